"""The run sandbox: bubblewrap (``bwrap``) where the machine allows it.

A sandboxed run sees the whole file system read-only (``/tmp`` too: a task, a checkout or
an interpreter may live there, so it is not hidden; the run's ``TMPDIR`` is a private
directory in its workspace), a minimal
``/dev`` (the real one on a GPU, so the driver stays reachable), its own ``/proc``, and no
network unless the task asks for it. Only its workspace is writable. Whether ``bwrap``
works is probed once per process (``bwrap --ro-bind / / true``); where it does not, runs
go unsandboxed and ONE warning says how to enable it.

The mode is the ``LABSWARM_SANDBOX`` setting (:class:`memory.settings.Settings.sandbox`):
``auto`` (sandbox when possible), ``off``, or ``require`` (refuse to run without one).
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

SandboxMode = Literal["auto", "off", "require"]
ENABLE_HINT = (
    "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces, "
    "or set LABSWARM_SANDBOX=off to silence this"
)
_warning_lock = threading.Lock()
_warned = False


class SandboxError(RuntimeError):
    """``LABSWARM_SANDBOX=require`` but no working sandbox on this machine."""


@functools.cache
def probe() -> str:
    """``""`` when ``bwrap`` can create a sandbox here, else why not (probed once)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        done = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-net", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap cannot start: {exc}"
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here: {done.stderr.strip()[:200]}"
    return ""


def sandbox_enabled(mode: SandboxMode) -> bool:
    """Whether runs are sandboxed in ``mode``; warns once per process when they cannot be.

    Raises :class:`SandboxError` for ``require`` without a working sandbox. Call it when a
    swarm starts so the warning (or the refusal) comes before the first run.
    """
    if mode == "off":
        return False
    why = probe()
    if not why:
        return True
    if mode == "require":
        raise SandboxError(f"LABSWARM_SANDBOX=require but {why}; {ENABLE_HINT}")
    global _warned
    with _warning_lock:
        if not _warned:
            _warned = True
            log.warning(
                "runs are NOT sandboxed (%s): they can write anywhere you can and use the "
                "network; %s",
                why,
                ENABLE_HINT,
            )
    return False


def wrap(argv: list[str], workdir: Path, *, gpu: bool, network: bool) -> list[str]:
    """``argv`` run by bubblewrap with only ``workdir`` writable."""
    work = str(Path(workdir).resolve())
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/"]
    cmd += ["--dev-bind", "/dev", "/dev"] if gpu else ["--dev", "/dev"]
    cmd += ["--proc", "/proc", "--bind", work, work, "--chdir", work]
    if not network:
        cmd.append("--unshare-net")
    cmd += ["--die-with-parent", "--"]
    return cmd + argv
