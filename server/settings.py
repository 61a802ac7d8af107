"""Server settings: one pydantic-settings class, environment prefix ``LABSWARM_``.

``LABSWARM_TOKEN=s3cret labswarm serve`` enables writes behind ``Authorization: Bearer
s3cret``. Without a token the server is read-only, unless ``open_writes`` allows
unauthenticated writes, which is only accepted on a loopback address.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WriteMode = Literal["token", "open", "disabled"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0 and anything else."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


class UnsafeSettings(ValueError):
    """The settings would expose writes to the network without a token."""


class Settings(BaseSettings):
    """How ``labswarm serve`` runs. Every field can be set as ``LABSWARM_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="LABSWARM_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to bind")
    port: int = Field(default=8765, ge=0, le=65535, description="port to bind (0 = any free)")
    memory: str | None = Field(
        default=None,
        description="store: None (embedded in ./.labswarm), a directory, or a PostgreSQL URL",
    )
    chroma: str | None = Field(
        default=None, description="Chroma server URL (http://host:port) for a PostgreSQL store"
    )
    token: SecretStr | None = Field(
        default=None, description="bearer token that write endpoints require"
    )
    open_writes: bool = Field(
        default=False,
        description="allow writes without a token (loopback addresses only)",
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="larger request bodies get 413"
    )
    log_level: str = Field(default="info")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.token is not None and not self.token.get_secret_value().strip():
            raise UnsafeSettings("token: must not be empty (unset it for a read-only server)")
        if self.token is not None and self.open_writes:
            raise UnsafeSettings("open_writes: cannot be combined with a token")
        if self.open_writes and not is_loopback(self.host):
            raise UnsafeSettings(
                f"host: refusing to bind {self.host!r} (beyond loopback) with writes enabled "
                "and no token; set LABSWARM_TOKEN / --token, or bind 127.0.0.1"
            )
        return self

    @property
    def write_mode(self) -> WriteMode:
        if self.token is not None:
            return "token"
        return "open" if self.open_writes else "disabled"
