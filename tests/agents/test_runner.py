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

from agents import devices, runner
from agents.devices import MEMORY_SHARE, cpu_count, cpu_devices, memory_share_gb, memory_total_gb
from agents.runner import group_members, group_memory_bytes, parse_summary, run_program
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


def test_group_memory_counts_the_whole_process_group(tmp_path):
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
        held = group_memory_bytes(proc.pid)
        assert held > 300 * 2**20  # the child's block counts, not only the leader
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5  # the orphaned child dies asynchronously
    while group_memory_bytes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_memory_bytes(proc.pid) == 0


def test_a_member_that_exits_while_measured_holds_nothing(monkeypatch):
    """The group is listed first and each member's proportional set read after: a member
    that exits in between (a data-loader worker ending) was listed with its resident set
    but has no address space left. It counts 0, not its stale resident set, which once
    killed a run whose forked workers ended as it was measured."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the child is a zombie
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        stale = runner.ProcStat(pid, "S", 300 * 2**20 // os.sysconf("SC_PAGE_SIZE"))
        monkeypatch.setattr(runner, "group_members", lambda pgid: [stale])
        assert group_memory_bytes(12345) == 0
    finally:
        os.waitpid(pid, 0)


BLOCK = 300 * 2**20
FORKS = 3

# Touches a BLOCK-byte block, forks FORKS children that share it copy-on-write without
# touching it (as data-loader workers do), writes ready-<n> per process, then sleeps
# HOLD seconds; the parent then reaps them and, in a run, prints the sum of the group's
# resident sets (every shared page counted once per process) and a metric.
FORKER = f"""\
import os, sys, time
HOLD = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
block = bytearray({BLOCK})
for i in range(0, len(block), 4096):
    block[i] = 1
children = []
for n in range({FORKS}):
    pid = os.fork()
    if pid == 0:
        open(f"ready-{{n}}", "w").close()
        time.sleep(HOLD)
        os._exit(0)
    children.append(pid)
open("ready-parent", "w").close()
while not all(os.path.exists(f"ready-{{n}}") for n in range({FORKS})):
    time.sleep(0.01)
rss = 0
for pid in [os.getpid(), *children]:
    with open(f"/proc/{{pid}}/status") as fh:
        rss += next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:")) * 1024
for pid in children:
    os.waitpid(pid, 0)
print("---")
print(f"rss_sum_gb: {{rss / 2**30:.4f}}")
print("val_loss: 0.5")
"""


def _wait_ready(where: Path, within: float = 20.0) -> None:
    names = ["ready-parent", *(f"ready-{n}" for n in range(FORKS))]
    deadline = time.monotonic() + within
    while not all((where / n).exists() for n in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all((where / n).exists() for n in names), sorted(p.name for p in where.iterdir())


def test_group_memory_counts_pages_forked_children_share_once(tmp_path):
    (tmp_path / "forker.py").write_text(FORKER)
    proc = subprocess.Popen(
        [sys.executable, "forker.py", "60"], cwd=tmp_path, start_new_session=True
    )
    try:
        _wait_ready(tmp_path)
        members = group_members(proc.pid)
        assert len([m for m in members if m.state not in ("Z", "X")]) == 1 + FORKS
        held = group_memory_bytes(proc.pid)
        rss_sum = sum(m.rss_pages for m in members) * os.sysconf("SC_PAGE_SIZE")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(f"group memory {held / 2**20:.1f} MiB, RSS sum {rss_sum / 2**20:.1f} MiB")
    assert rss_sum > (1 + FORKS) * BLOCK  # the block is resident in every process
    assert 0.8 * BLOCK <= held < 1.5 * BLOCK  # ...but held once


def test_a_run_whose_forked_children_share_its_memory_stays_inside_the_limit(tmp_path):
    # 0.6 GiB lies between the group's proportional total (~0.3) and its RSS sum (~1.2).
    task = _with_memory_limit(tmp_path, FORKER.replace("else 60.0", "else 3.0"), 0.6)
    pgids: list[int] = []
    try:
        r = run_program(task, task.root, DEV, 30, tmp_path / "run.log", on_start=pgids.append)
    finally:
        for pgid in pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert r.status == "ok", (r.error, r.log_tail)
    assert r.metric == 0.5
    assert float(r.summary["rss_sum_gb"]) > 0.6 * 1.5  # RSS would have killed it


def test_a_cgroup_v1_limit_lowers_the_machine_memory_where_there_is_no_v2_file(
    tmp_path, monkeypatch
):
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    v1 = tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(devices, "CGROUP_MEMORY_LIMITS", (str(tmp_path / "none"), str(v1)))
    v1.write_text(f"{2**30}\n")
    assert memory_total_gb() == pytest.approx(1.0)
    v1.write_text("9223372036854771712\n")  # v1's "no limit"
    assert memory_total_gb() == pytest.approx(physical / 2**30)
    v2 = tmp_path / "memory.max"
    v2.write_text("max\n")  # a v2 file wins over v1's
    monkeypatch.setattr(devices, "CGROUP_MEMORY_LIMITS", (str(v2), str(v1)))
    v1.write_text(f"{2**30}\n")
    assert memory_total_gb() == pytest.approx(physical / 2**30)
    v2.write_text(f"{2 * 2**30}\n")
    assert memory_total_gb() == pytest.approx(min(2.0, physical / 2**30))


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
