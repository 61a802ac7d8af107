"""The server's settings are the process settings: ``memory.settings.Settings``.

There is one settings class for every ``LABSWARM_*`` variable (the server's host, port,
token, open_writes, max_body_bytes, log_level and trusted_hosts among them); this module
only re-exports it, so that ``from server.settings import Settings`` keeps working.
"""

from __future__ import annotations

from memory.settings import Settings, UnsafeSettings, WriteMode, get_settings, is_loopback

__all__ = ["Settings", "UnsafeSettings", "WriteMode", "get_settings", "is_loopback"]
