"""Per-agent workspaces: a private copy of the task directory where programs run.

Protected files are hashed once from the task directory; after every run the workspace's
protected files are hashed again. Any change (edited, deleted, or a new file matching a
protected glob) is a tamper: the run is ``invalid`` and the files are restored from the
task directory before the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from pathlib import Path

from agents.program import Program
from agents.task import Task

log = logging.getLogger(__name__)

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".labswarm", "runs", ".git")
PIDFILE = ".labswarm-run.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def protected_hashes(task: Task, root: Path) -> dict[str, str]:
    """``{relpath: sha256}`` of every file under ``root`` matching a protected glob."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".git")]
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if rel == PIDFILE or not task.is_protected(rel):
                continue
            found[rel] = _sha256(full)
    return found


class Workspace:
    """A copy of ``task.root`` at ``path`` for one agent."""

    def __init__(self, task: Task, path: Path) -> None:
        self.task = task
        self.path = Path(path)
        self.expected = protected_hashes(task, task.root)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(task.root, self.path, ignore=_IGNORE, symlinks=False)
        else:
            self.restore_protected()

    def materialise(self, program: Program) -> None:
        """Write ``program``'s editable files into the workspace."""
        program.write(self.path)

    def tampered(self) -> list[str]:
        """Protected files that differ from the task directory (changed, missing, or new)."""
        now = protected_hashes(self.task, self.path)
        changed = [rel for rel, h in self.expected.items() if now.get(rel) != h]
        added = [rel for rel in now if rel not in self.expected]
        return sorted(changed + added)

    def restore_protected(self) -> None:
        """Copy protected files back from the task directory and drop unexpected ones."""
        for rel in self.tampered():
            target = self.path / rel
            source = self.task.root / rel
            if rel in self.expected:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            elif target.exists():
                target.unlink()
        left = self.tampered()
        if left:
            raise RuntimeError(f"workspace {self.path}: cannot restore protected files {left}")

    # -- the pid file of the run in flight (to reap it after a kill -9 of the swarm) --

    def write_pidfile(self, pgid: int) -> None:
        (self.path / PIDFILE).write_text(json.dumps({"pgid": pgid}), encoding="utf-8")

    def clear_pidfile(self) -> None:
        (self.path / PIDFILE).unlink(missing_ok=True)

    def reap_stale_run(self) -> bool:
        """Kill the process group of a run left behind by a killed swarm. True if one was."""
        pidfile = self.path / PIDFILE
        if not pidfile.exists():
            return False
        try:
            pgid = int(json.loads(pidfile.read_text(encoding="utf-8"))["pgid"])
        except (ValueError, KeyError, TypeError):
            pidfile.unlink(missing_ok=True)
            return False
        try:  # only a process still working in this workspace (pids get reused)
            cwd = Path(os.readlink(f"/proc/{pgid}/cwd"))
            if cwd != self.path.resolve() and self.path.resolve() not in cwd.parents:
                pidfile.unlink(missing_ok=True)
                return False
        except FileNotFoundError:  # no such process any more
            pidfile.unlink(missing_ok=True)
            return False
        except OSError:  # no /proc here: trust the pid file
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)
            log.warning("killed the run left behind by a stopped swarm (process group %d)", pgid)
            killed = True
        except ProcessLookupError:
            killed = False
        pidfile.unlink(missing_ok=True)
        return killed
