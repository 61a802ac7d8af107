"""Running one program in an agent's workspace: the one path every run takes (experiments
and baseline replicates alike).

:func:`execute` checks that the task directory's protected files are unchanged, runs the
task's setup step once per workspace, restores the workspace's protected files, writes the
program, runs it on the agent's device, and checks the protected files again (a change is
a tamper: the files are restored and the run is judged ``invalid``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agents.devices import Device
from agents.program import Program
from agents.runner import RunResult, run_program, run_seed
from agents.task import Task
from agents.workspace import TaskRootChanged, Workspace, check_task_root
from memory.models import utcnow

log = logging.getLogger(__name__)

SETUP_LOG = "setup.log"


class Outcome(BaseModel):
    """What one run produced: the runner's result, the protected files it changed, and
    what a trace may keep of it (``resources``: no absolute paths)."""

    result: RunResult
    tampered: list[str] = []
    resources: dict[str, Any] = {}
    started_at: datetime
    finished_at: datetime


class SetupFailed(RuntimeError):
    """The task's setup step failed in a workspace; ``log_path`` holds its output."""

    def __init__(self, result: RunResult, log_path: Path) -> None:
        super().__init__(
            f"the task's setup step failed ({result.status}): {result.error}; log: {log_path}"
        )
        self.result = result
        self.log_path = log_path


@dataclass
class Bench:
    """Where one agent runs programs: its workspace, device, budget and log directory."""

    task: Task
    workspace: Workspace
    device: Device
    budget: float
    logs_dir: Path
    home: Path  # the swarm's directory: stored log names are relative to it
    expected: dict[str, str]  # protected hashes of the task directory at swarm creation
    stop: threading.Event = field(default_factory=threading.Event)
    python: str | None = None  # interpreter for "{python}" (default: this one)

    def check_root(self) -> None:
        """Raise :class:`TaskRootChanged` if the task directory's protected files changed."""
        changed = check_task_root(self.task, self.expected)
        if changed:
            raise TaskRootChanged(
                f"protected files of the task directory {self.task.root} changed since the "
                f"swarm started: {', '.join(changed)}; stopping (restore them, or start a "
                "new swarm)"
            )

    def ensure_setup(self) -> None:
        """Run the task's setup step in this workspace if it has not run yet."""
        log_path = self.logs_dir / SETUP_LOG
        result = self.workspace.ensure_setup(
            self.device, log_path, python=self.python, stop=self.stop
        )
        if result is not None and result.status != "ok":
            raise SetupFailed(result, log_path)

    def execute(
        self,
        program: Program,
        log_name: str,
        *,
        seed: int | None = None,
        budget: float | None = None,
    ) -> Outcome:
        """Run ``program`` here (see the module docstring); never raises for a bad program.

        ``seed`` is the run's ``LABSWARM_SEED`` (default: :func:`agents.runner.run_seed` of
        ``log_name``, so every log name -- a trace id -- gets its own); ``budget`` its time
        budget in seconds (default: the bench's; a short run's is shorter)."""
        self.check_root()
        self.ensure_setup()
        ws = self.workspace
        ws.restore_protected()
        ws.materialise(program)
        started = utcnow()
        result = run_program(
            self.task,
            ws.path,
            self.device,
            self.budget if budget is None else budget,
            self.logs_dir / f"{log_name}.log",
            stop=self.stop,
            on_start=ws.write_pidfile,
            python=self.python,
            seed=run_seed(log_name) if seed is None else seed,
        )
        ws.clear_pidfile()
        tampered = ws.tampered()
        if tampered:
            log.warning("run %s touched protected files %s; restoring", log_name, tampered)
            ws.restore_protected()
        return Outcome(
            result=result,
            tampered=tampered,
            resources=result.stored_resources(self.home),
            started_at=started,
            finished_at=utcnow(),
        )
