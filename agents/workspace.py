"""Per-agent workspaces: a private copy of the task directory where programs run.

The task root's protected files are hashed once per swarm (:func:`protected_hashes`, kept
in ``swarm.json``) and the root is checked against them before each run
(:func:`check_task_root`), so a run that managed to change the original task is caught
and never becomes the next swarm's "expected" state. After every run the workspace's
protected files are hashed again; any change (edited, deleted, or a new file matching a
protected glob) is a tamper: the run is ``invalid`` and the files are restored from the
recorded state before the next run.

A task's ``setup`` command runs once per workspace (:meth:`Workspace.ensure_setup`).
Its state lives next to the workspace, in ``<workspace>.setup/``, out of a sandboxed
run's reach: ``done.json`` (the command and the hashes of the protected files it
produced) and ``files/`` (copies of those files, to restore them from).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from agents.devices import Device
from agents.program import Program
from agents.runner import PRIVATE_DIR, RunResult, group_members, run_setup
from agents.sandbox import SandboxMode
from agents.task import Task

log = logging.getLogger(__name__)

PIDFILE = ".labswarm-run.json"
_SKIP_DIRS = frozenset({"__pycache__", ".git", PRIVATE_DIR, "runs"})
_IGNORE = shutil.ignore_patterns(*_SKIP_DIRS, "*.pyc")
SETUP_DONE = "done.json"


class TaskRootChanged(RuntimeError):
    """The original task directory no longer matches the hashes recorded for the swarm."""


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def protected_hashes(task: Task, root: Path | None = None) -> dict[str, str]:
    """``{relpath: sha256}`` of every file under ``root`` (default: the task root) matching
    a protected glob."""
    base = Path(root) if root is not None else task.root
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(base).as_posix()
            if rel == PIDFILE or name.endswith(".pyc") or not task.is_protected(rel):
                continue
            found[rel] = _sha256(full)
    return found


def _diff(expected: dict[str, str], now: dict[str, str]) -> list[str]:
    changed = [rel for rel, h in expected.items() if now.get(rel) != h]
    return sorted(changed + [rel for rel in now if rel not in expected])


def check_task_root(task: Task, expected: dict[str, str]) -> list[str]:
    """Protected files of the ORIGINAL task root that changed, vanished or appeared since
    ``expected`` was recorded (empty: the root is intact)."""
    return _diff(expected, protected_hashes(task))


class Workspace:
    """A copy of ``task.root`` at ``path`` for one agent.

    ``expected``: the protected hashes recorded for the swarm (None: hash the root now).
    """

    def __init__(self, task: Task, path: Path, expected: dict[str, str] | None = None) -> None:
        self.task = task
        self.path = Path(path)
        self.expected = dict(expected) if expected is not None else protected_hashes(task)
        self.setup_dir = self.path.with_name(self.path.name + ".setup")
        self._setup_lock = threading.Lock()
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(task.root, self.path, ignore=_IGNORE, symlinks=False)
            shutil.rmtree(self.setup_dir, ignore_errors=True)  # a fresh copy needs setup
        self.restore_protected()

    def materialise(self, program: Program) -> None:
        """Write ``program``'s editable files into the workspace."""
        program.write(self.path)

    # -- protected files -------------------------------------------------------------

    def _setup_state(self) -> dict | None:
        try:
            state = json.loads((self.setup_dir / SETUP_DONE).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def recorded(self) -> dict[str, str]:
        """The protected state a run must leave: the task root's, plus what setup made."""
        state = self._setup_state() or {}
        return {**self.expected, **state.get("outputs", {})}

    def tampered(self) -> list[str]:
        """Protected files that differ from the recorded state (changed, missing, or new)."""
        return _diff(self.recorded(), protected_hashes(self.task, self.path))

    def restore_protected(self) -> None:
        """Put protected files back as recorded (from the task root, or from the copies of
        the setup outputs) and drop unexpected ones.

        Raises :class:`TaskRootChanged` if the task root itself no longer matches.
        """
        made = (self._setup_state() or {}).get("outputs", {})
        bad_root: list[str] = []
        for rel in self.tampered():
            target = self.path / rel
            if rel in made:
                source = self.setup_dir / "files" / rel
            elif rel in self.expected:
                source = self.task.root / rel
                if not source.is_file() or _sha256(source) != self.expected[rel]:
                    bad_root.append(rel)
                    continue
            else:
                target.unlink(missing_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        if bad_root:
            raise TaskRootChanged(
                f"task directory {self.task.root}: protected file(s) {bad_root} changed since "
                "the swarm recorded them; restore them (or start a new swarm)"
            )
        left = self.tampered()
        if left:
            raise RuntimeError(f"workspace {self.path}: cannot restore protected files {left}")

    # -- the set-up step ---------------------------------------------------------------

    def setup_needed(self) -> bool:
        """True if the task has a ``setup`` command that has not succeeded here yet."""
        if not self.task.setup:
            return False
        state = self._setup_state()
        return state is None or state.get("command") != list(self.task.setup)

    def ensure_setup(
        self,
        device: Device,
        log_path: Path,
        *,
        python: str | None = None,
        stop: threading.Event | None = None,
        sandbox: SandboxMode | None = None,
    ) -> RunResult | None:
        """Run the task's ``setup`` here once, before the first run.

        Returns None when there is nothing to do (no setup, or it already succeeded in
        this workspace), else the set-up run's result: ``status == "ok"`` means done;
        anything else means it failed (the log is ``log_path``) and it will be tried
        again on the next call. Protected files the setup creates or changes become part
        of the recorded state (copied aside, restored like the task's own).
        """
        with self._setup_lock:
            if not self.setup_needed():
                return None
            self.restore_protected()
            result = run_setup(
                self.task,
                self.path,
                device,
                log_path,
                stop=stop,
                on_start=self.write_pidfile,
                python=python,
                sandbox=sandbox,
            )
            self.clear_pidfile()
            if result.status != "ok":
                log.warning("setup failed in %s: %s (log: %s)", self.path, result.error, log_path)
                return result
            outputs = _diff_values(self.expected, protected_hashes(self.task, self.path))
            shutil.rmtree(self.setup_dir, ignore_errors=True)
            for rel in outputs:
                copy = self.setup_dir / "files" / rel
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.path / rel, copy)
            self.setup_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.setup_dir / (SETUP_DONE + ".tmp")
            state = {"command": list(self.task.setup), "outputs": outputs}
            tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
            tmp.replace(self.setup_dir / SETUP_DONE)
            log.info("setup done in %s (%.1f s)", self.path, result.duration_s)
            return result

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
        if killed:  # SIGKILL is delivered asynchronously: return once the group is dead
            wait_group_dead(pgid)
        pidfile.unlink(missing_ok=True)
        return killed


REAP_WAIT_S = 30.0


def live_members(pgid: int) -> list[int]:
    """Pids of process group ``pgid`` that still run. A zombie does not: it is dead and
    only waits for its parent (init, for the orphans of a killed swarm) to reap it."""
    return [m.pid for m in group_members(pgid) if m.state not in ("Z", "X")]


def wait_group_dead(pgid: int, timeout: float = REAP_WAIT_S) -> bool:
    """Wait until no member of ``pgid`` runs (True), or ``timeout`` seconds (False)."""
    if not Path("/proc/self/stat").exists():  # no /proc here: cannot tell, do not wait
        return True
    deadline = time.monotonic() + timeout
    while live_members(pgid):
        if time.monotonic() > deadline:
            log.warning("process group %d still runs %.0f s after SIGKILL", pgid, timeout)
            return False
        time.sleep(0.05)
    return True


def _diff_values(expected: dict[str, str], now: dict[str, str]) -> dict[str, str]:
    """Entries of ``now`` that are new or differ from ``expected``."""
    return {rel: h for rel, h in now.items() if expected.get(rel) != h}
