"""The runner: real subprocesses in their own process group, the summary, the faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.devices import MEMORY_SHARE, cpu_count, cpu_devices, memory_share_gb, memory_total_gb
from agents.runner import group_rss_bytes, parse_summary, run_program
from agents.task import TaskError, load_task
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


# Holds about 400 MiB of touched memory for a while, then reports a metric.
HOG = """\
import time
block = bytearray(400 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(3)
print('---')
print('val_loss: 0.5')
"""


def _with_memory_limit(tmp_path: Path, train: str, gb: float):
    root = make_task(tmp_path / "t", train)
    toml = root / "task.toml"
    toml.write_text(toml.read_text().replace("[budget]\n", f"[budget]\nmemory_gb = {gb}\n"))
    return load_task(root)


def test_a_run_over_its_memory_limit_is_killed_as_a_crash_that_says_so(tmp_path):
    task = _with_memory_limit(tmp_path, HOG, 0.2)
    assert task.memory_gb == 0.2
    pgids = []
    r = run_program(task, task.root, DEV, 10, tmp_path / "run.log", on_start=pgids.append)
    assert r.status == "crash" and r.metric is None
    assert r.error.startswith("out of memory: killed holding ")
    assert "over the run's limit of 0.20 GiB" in r.error
    assert _gone(pgids[0])


def test_a_run_inside_its_memory_limit_finishes(tmp_path):
    task = _with_memory_limit(tmp_path, HOG, 2)
    r = run_program(task, task.root, DEV, 10, tmp_path / "run.log")
    assert r.status == "ok" and r.metric == 0.5


def test_group_rss_counts_the_whole_process_group(tmp_path):
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        '\'b = bytearray(300 * 2**20); b[::4096] = b"x" * len(b[::4096]); '
        'open("ready", "w").close(); import time; time.sleep(30)\'])\n'
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "ready").exists()
        held = group_rss_bytes(proc.pid)
        assert held > 300 * 2**20  # the child's block counts, not only the leader
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5  # the orphaned child dies asynchronously
    while group_rss_bytes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_rss_bytes(proc.pid) == 0


def test_the_default_memory_limit_is_the_devices_share_of_the_machine():
    total = memory_total_gb()
    assert total > 0
    whole = cpu_devices(1, threads=cpu_count())[0]
    assert memory_share_gb(whole) == pytest.approx(MEMORY_SHARE * total)
    one = cpu_devices(1, threads=1)[0]
    assert memory_share_gb(one) == pytest.approx(MEMORY_SHARE * total / cpu_count())


def test_a_negative_memory_limit_is_an_error_naming_the_field(tmp_path):
    root = make_task(tmp_path / "t")
    toml = root / "task.toml"
    toml.write_text(toml.read_text().replace("[budget]\n", "[budget]\nmemory_gb = -1\n"))
    with pytest.raises(TaskError, match=r"budget\.memory_gb"):
        load_task(root)
