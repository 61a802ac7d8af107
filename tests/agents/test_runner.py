"""The runner: real subprocesses in their own process group, the summary, the faults."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from agents.devices import cpu_devices
from agents.runner import parse_summary, run_program
from agents.task import load_task
from tests.agents.conftest import make_task

DEV = cpu_devices(1, threads=1)[0]


def _task(tmp_path: Path, train: str, timeout: float = 0):
    return load_task(make_task(tmp_path / "t", train, timeout=timeout))


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie not yet reaped counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_summary_after_the_last_separator_only():
    text = "---\nval_loss: 9\nlog\n---\nval_loss: 1.5\nnote: hi there\nbad line\n"
    assert parse_summary(text) == {"val_loss": 1.5, "note": "hi there"}
    assert parse_summary("no summary") == {}


def test_ok_run_gets_budget_device_threads_and_its_metric(tmp_path):
    task = _task(
        tmp_path,
        "import os\nprint('---')\nprint('val_loss: 0.25')\n"
        "print('threads:', os.environ['LABSWARM_THREADS'])\n"
        "print('omp:', os.environ['OMP_NUM_THREADS'])\n"
        "print('device:', os.environ['LABSWARM_DEVICE'])\n"
        "print('budget:', os.environ['LABSWARM_TIME_BUDGET'])\n"
        "print('cvd:', repr(os.environ['CUDA_VISIBLE_DEVICES']))\n",
    )
    log = tmp_path / "run.log"
    r = run_program(task, task.root, DEV, 3, log)
    assert r.status == "ok" and r.metric == 0.25 and r.returncode == 0
    assert r.summary["threads"] == 1 and r.summary["omp"] == 1 and r.summary["budget"] == 3
    assert r.summary["device"] == "cpu" and r.summary["cvd"] == "''"
    assert "val_loss: 0.25" in log.read_text()


def test_exception_is_a_crash_with_the_error(tmp_path):
    task = _task(tmp_path, "print('starting')\nraise RuntimeError('boom in train')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "run.log")
    assert r.status == "crash" and r.returncode == 1 and r.metric is None
    assert "RuntimeError: boom in train" in r.error
    assert "Traceback" in r.log_tail


def test_nan_and_missing_metric_are_crashes(tmp_path):
    task = _task(tmp_path, "print('---')\nprint('val_loss: nan')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "a.log")
    assert r.status == "crash" and "NaN" in r.error
    task = _task(tmp_path / "b", "print('---')\nprint('other: 1')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "b.log")
    assert r.status == "crash" and "no 'val_loss'" in r.error


HANG = """\
import subprocess, time
child = subprocess.Popen(["sleep", "300"])
open("child.pid", "w").write(str(child.pid))
time.sleep(300)
"""


def test_hang_past_the_timeout_kills_the_whole_process_group(tmp_path):
    task = _task(tmp_path, HANG, timeout=1.5)
    started = time.monotonic()
    pgids = []
    r = run_program(task, task.root, DEV, 1, tmp_path / "run.log", on_start=pgids.append)
    assert r.status == "timeout" and "hard timeout of 1.5 s" in r.error
    assert time.monotonic() - started < 10
    child = int((task.root / "child.pid").read_text())
    assert _gone(child), "the program's own child must die with the group"
    assert _gone(pgids[0])


def test_stop_event_interrupts_a_run(tmp_path):
    task = _task(tmp_path, HANG)
    stop = threading.Event()
    threading.Timer(0.7, stop.set).start()
    r = run_program(task, task.root, DEV, 60, tmp_path / "run.log", stop=stop)
    assert r.status == "interrupted"
    assert _gone(int((task.root / "child.pid").read_text()))


PATTERN = """\
[metric]
name = "accuracy"
direction = "maximize"
pattern = 'eval accuracy = ([-+0-9.eEnaif]+)'
"""


def _pattern_task(tmp_path: Path, train: str):
    root = make_task(tmp_path / "p", train)
    toml = root / "task.toml"
    text = toml.read_text()
    start, end = text.index("[metric]"), text.index("[budget]")
    toml.write_text(text[:start] + PATTERN + "\n" + text[end:])
    return load_task(root)


def test_a_pattern_reads_the_last_match_in_stdout_and_stderr(tmp_path):
    task = _pattern_task(
        tmp_path,
        "import sys\nprint('eval accuracy = 0.5')\n"
        "print('eval accuracy = 0.912', file=sys.stderr)\n"
        "print('---')\nprint('params: 12')\n",
    )
    r = run_program(task, task.root, DEV, 3, tmp_path / "run.log")
    assert r.status == "ok" and r.metric == 0.912, r.error
    assert r.summary == {"params": 12.0, "accuracy": 0.912}, "the summary is still kept"


def test_a_pattern_match_that_is_not_a_finite_number_is_a_crash(tmp_path):
    task = _pattern_task(tmp_path, "print('eval accuracy = 0.5')\nprint('eval accuracy = nan')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "a.log")
    assert r.status == "crash" and "NaN" in r.error
    task = _pattern_task(tmp_path / "b", "print('eval accuracy = 1e')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "b.log")
    assert r.status == "crash" and "[metric].pattern is not a number: '1e'" in r.error
    task = _pattern_task(tmp_path / "c", "print('eval accuracy = 0.7')\nraise SystemExit(3)\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "c.log")
    assert r.status == "crash" and r.returncode == 3 and r.metric is None


def test_a_program_that_ignores_the_run_variables_still_runs(tmp_path):
    task = _pattern_task(tmp_path, "print('eval accuracy = 0.75')\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "run.log")
    assert r.status == "ok" and r.metric == 0.75


def test_a_missing_interpreter_is_a_crash_naming_it(tmp_path):
    task = _task(tmp_path, "print(1)\n")
    r = run_program(task, task.root, DEV, 3, tmp_path / "r.log", python="/no/such/python")
    assert r.status == "crash" and r.metric is None
    assert "/no/such/python" in r.error  # bwrap's execvp error, or Popen's
