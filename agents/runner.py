"""Run one program: a subprocess in its own process group, a hard timeout, a log file.

The run's environment is the parent's plus the task's ``[env]``, plus::

    LABSWARM_TIME_BUDGET (or the task's budget.env)   the budget in seconds
    LABSWARM_DEVICE                                    "cpu" or "cuda"
    CUDA_VISIBLE_DEVICES                               the one GPU (cuda), "" (cpu)
    LABSWARM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS the CPU thread share

The metric is read from the summary: the ``key: value`` lines after the last line that
is exactly ``---`` in stdout.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agents.devices import Device
from agents.task import Task

RunStatus = Literal["ok", "crash", "timeout", "interrupted"]
TAIL_LINES = 40


@dataclass
class RunResult:
    """What a run produced. ``status`` is ``ok`` only with a finite metric."""

    status: RunStatus
    returncode: int | None
    metric: float | None
    summary: dict[str, float | str] = field(default_factory=dict)
    duration_s: float = 0.0
    log_tail: str = ""
    error: str = ""
    log_path: str = ""


def parse_summary(text: str) -> dict[str, float | str]:
    """``key: value`` lines after the last ``---`` line; numbers become floats."""
    lines = text.splitlines()
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == "---":
            start = i + 1
            break
    if start is None:
        return {}
    summary: dict[str, float | str] = {}
    for line in lines[start:]:
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or " " in key:
            continue
        try:
            summary[key] = float(value)
        except ValueError:
            summary[key] = value
    return summary


def run_env(task: Task, device: Device, budget: float) -> dict[str, str]:
    """The environment a run gets (see the module docstring)."""
    env = dict(os.environ)
    env.update(task.env)
    env[task.budget_env] = f"{budget:g}"
    env["LABSWARM_TIME_BUDGET"] = f"{budget:g}"
    env["LABSWARM_DEVICE"] = device.kind
    env["CUDA_VISIBLE_DEVICES"] = str(device.gpu_index) if device.kind == "cuda" else ""
    threads = str(device.threads)
    env["LABSWARM_THREADS"] = threads
    env["OMP_NUM_THREADS"] = threads
    env["MKL_NUM_THREADS"] = threads
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _kill_group(pgid: int, grace: float = 3.0) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _last_error_line(tail: str) -> str:
    for line in reversed(tail.splitlines()):
        s = line.strip()
        if s and not s.startswith(("File ", "^", "~")):
            return s[:300]
    return ""


def run_program(
    task: Task,
    workdir: Path,
    device: Device,
    budget: float,
    log_path: Path,
    *,
    timeout: float | None = None,
    stop: threading.Event | None = None,
    on_start: Callable[[int], None] | None = None,
    python: str | None = None,
) -> RunResult:
    """Run the task command in ``workdir``; never raises for a failing program."""
    timeout = task.hard_timeout(budget) if timeout is None else timeout
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = task.argv(python)
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=run_env(task, device, budget),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and process group
            )
        except OSError as exc:
            return RunResult(
                status="crash",
                returncode=None,
                metric=None,
                error=f"cannot start {argv[0]!r}: {exc}",
                log_path=str(log_path),
            )
        pgid = proc.pid
        if on_start:
            on_start(pgid)
        reason: RunStatus | None = None
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() - started > timeout:
                reason = "timeout"
            elif stop is not None and stop.is_set():
                reason = "interrupted"
            if reason:
                _kill_group(pgid)
                proc.wait()
                break
        _kill_group(pgid, grace=0.5)  # children the program left behind
    duration = time.monotonic() - started
    tail = _tail(log_path)
    result = RunResult(
        status="ok",
        returncode=proc.returncode,
        metric=None,
        duration_s=round(duration, 3),
        log_tail=tail,
        log_path=str(log_path),
    )
    if reason == "timeout":
        result.status = "timeout"
        result.error = f"killed at the hard timeout of {timeout:g} s (budget {budget:g} s)"
        return result
    if reason == "interrupted":
        result.status = "interrupted"
        result.error = "the swarm stopped while this run was in flight"
        return result
    result.summary = parse_summary(log_path.read_text(encoding="utf-8", errors="replace"))
    if proc.returncode != 0:
        result.status = "crash"
        last = _last_error_line(tail)
        result.error = f"exit code {proc.returncode}" + (f": {last}" if last else "")
        return result
    value = result.summary.get(task.metric_name)
    if value is None:
        result.status = "crash"
        result.error = f"no '{task.metric_name}' in the summary after the last '---' line"
    elif not isinstance(value, float):
        result.status = "crash"
        result.error = f"'{task.metric_name}' is not a number: {value!r}"
    elif not math.isfinite(value):
        result.status = "crash"
        result.error = f"'{task.metric_name}' is {value} (NaN or infinite)"
    else:
        result.metric = value
    return result
