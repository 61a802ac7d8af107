"""One owner per embedded store directory.

The embedded store keeps its vector index in a per-process Chroma ``PersistentClient``,
which caches what it has read: a second process writing the same directory is invisible
to it (a server next to a running swarm found 0 of 30 new traces after a minute). So one
process owns a directory: ``acquire(dir)`` takes an exclusive ``fcntl.flock`` on
``dir/labswarm.lock`` (released by the kernel if the process dies, so a crash never leaves
a stale lock) and writes the owner's PID and command line into it. A second process is
refused with ``StoreInUse`` naming the owner and the alternative: serve the directory
(``labswarm serve --memory DIR``) and point every process at the server
(``--memory http://127.0.0.1:8765``); or use PostgreSQL + a Chroma server.

Inside one process the lock is counted: several store objects (and every thread) may use
the directory, and the file lock is released when the last of them closes. A forked child
is another process and is refused like any other.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from memory.errors import StoreInUse

log = logging.getLogger(__name__)

LOCK_FILE = "labswarm.lock"
_SECRET_FLAGS = ("--token", "--password")
_MAX_CMD = 1000  # characters of the owner's command line kept in the lock file


@dataclass
class _Held:
    fd: int
    pid: int
    count: int


_held: dict[Path, _Held] = {}
_registry = threading.Lock()


def _command_line() -> str:
    """This process's command line, with the values of secret flags hidden."""
    try:
        raw = Path("/proc/self/cmdline").read_bytes().split(b"\0")
        args = [a.decode("utf-8", "replace") for a in raw if a]
    except OSError:
        args = list(sys.argv)
    out: list[str] = []
    hide = False
    for arg in args:
        if hide:
            out.append("***")
            hide = False
        elif arg in _SECRET_FLAGS:
            out.append(arg)
            hide = True
        elif arg.startswith(tuple(f"{f}=" for f in _SECRET_FLAGS)):
            out.append(arg.split("=", 1)[0] + "=***")
        else:
            out.append(arg)
    text = " ".join(" ".join(out).split())  # one line
    return text if len(text) <= _MAX_CMD else text[: _MAX_CMD - 3] + "..."


def _owner(fd: int) -> dict[str, object]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536).decode("utf-8", "replace") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _refusal(home: Path, owner: dict[str, object]) -> StoreInUse:
    pid = owner.get("pid", "?")
    cmd = str(owner.get("cmd") or "unknown command")
    since = f" since {owner['since']}" if owner.get("since") else ""
    return StoreInUse(
        f"memory {home} is in use by another process: pid {pid} ({cmd}){since}. An embedded "
        "store has one owner process (a second one would not see its writes). To share it, "
        f"run `labswarm serve --memory {home}` (as the only owner) and start the other "
        "processes with `--memory http://127.0.0.1:8765`; or stop that process first."
    )


class DirLock:
    """This process's hold on one directory; ``release()`` is idempotent."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._released = False

    def release(self) -> None:
        with _registry:
            if self._released:
                return
            self._released = True
            held = _held.get(self.home)
            if held is None or held.pid != os.getpid():
                return
            held.count -= 1
            if held.count > 0:
                return
            del _held[self.home]
            try:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
            finally:
                os.close(held.fd)


def acquire(home: str | Path) -> DirLock:
    """Own ``home`` for this process (counted), or raise ``StoreInUse``."""
    path = Path(home).resolve()
    with _registry:
        held = _held.get(path)
        if held is not None and held.pid == os.getpid():
            held.count += 1
            return DirLock(path)
        if held is not None:  # inherited through fork(): the parent's hold, not ours
            del _held[path]
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise _refusal(path, owner) from None
        except BaseException:
            os.close(fd)
            raise
        me = {
            "pid": os.getpid(),
            "cmd": _command_line(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        _held[path] = _Held(fd=fd, pid=os.getpid(), count=1)
        log.debug("%s: owned by pid %d", path, os.getpid())
        return DirLock(path)
