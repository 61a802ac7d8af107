"""Run one program: a subprocess in its own process group (inside the sandbox where the
machine allows, :mod:`agents.sandbox`), a hard timeout, a log file.

The run's environment is built from an allow-list, never copied whole (:func:`run_env`):
``PATH``, ``HOME``, ``LANG``/``LC_*``, ``TZ``, ``TMPDIR``, ``PYTHON*``, a few library
paths, the trainer's ``LABSWARM_CORPUS``/``LABSWARM_CACHE_DIR``, the task's ``[env]``, and::

    LABSWARM_TIME_BUDGET (and the task's budget.env)   the budget in seconds
    LABSWARM_DEVICE                                    "cpu" or "cuda"
    CUDA_VISIBLE_DEVICES                               the one GPU (cuda), "" (cpu)
    LABSWARM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS the CPU thread share
    LABSWARM_SEED                                      this run's seed (:func:`run_seed`)
    LABSWARM_RESULT                                    the file a protected evaluator
                                                       appends its result line to

Secret-looking variables (:func:`agents.task.is_secret_name`) are never passed on, and
their values in this process's environment are redacted from everything a run returns.

The metric is the last match of the task's ``[metric].pattern`` in the output (stdout and
stderr), or else the ``key: value`` summary after the last line that is exactly ``---``;
only one summary block may carry the metric (a second one, printed after the real one, makes
the run invalid). When the task declares ``[metric].harness = true``, the value its protected
evaluator appended to ``$LABSWARM_RESULT`` is the metric, and the printed one must agree
with it (:func:`harness_verdict`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.devices import Device, memory_share_gb
from agents.sandbox import SandboxMode, sandbox_enabled, wrap
from agents.task import Task, is_secret_name
from memory.settings import get_settings

RunStatus = Literal["ok", "crash", "timeout", "interrupted"]
TAIL_LINES = 40
# How often a run's memory is read (:func:`group_memory_bytes`): a scan of /proc (~1.5 ms
# per 100 processes) plus each member's smaps_rollup, which walks its page tables (~11 ms
# per GiB resident). A read that took longer than MEMORY_POLL_SHARE of the interval
# stretches the interval, so the watch never costs more than that share of a CPU.
MEMORY_POLL_S = 0.5
MEMORY_POLL_SHARE = 0.05
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words
PASS_THROUGH = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "XDG_CACHE_HOME",
        "LD_LIBRARY_PATH",
        "CUDA_HOME",
        "LABSWARM_CORPUS",
        "LABSWARM_CACHE_DIR",
    }
)
PRIVATE_DIR = ".labswarm"  # inside a workspace: the sandboxed run's caches
SEED_ENV = "LABSWARM_SEED"
RESULT_ENV = "LABSWARM_RESULT"
# Two printed forms of one value agree within printing precision (6 significant decimals).
PRINT_REL_TOL = 1e-5
PRINT_ABS_TOL = 1e-6


def run_seed(trace_id: str) -> int:
    """The seed of the run recorded as ``trace_id``: the first 32 bits of its SHA-256,
    masked to ``[0, 2**31 - 1]`` -- distinct per run, the same on a re-run of that trace."""
    return int(hashlib.sha256(trace_id.encode("utf-8")).hexdigest()[:8], 16) & 0x7FFFFFFF


def result_path(workdir: Path, log_name: str) -> Path:
    """The file ``$LABSWARM_RESULT`` names for one run: in the workspace's private dir."""
    return Path(workdir).resolve() / PRIVATE_DIR / f"result-{log_name}.json"


# How the error of a run killed over its memory limit begins (readers tell it by this)
OUT_OF_MEMORY = "out of memory"


@dataclass
class RunResult:
    """What a run produced, already redacted. ``status`` is ``ok`` only with a finite
    metric (for a set-up step: with exit code 0)."""

    status: RunStatus
    returncode: int | None
    metric: float | None
    summary: dict[str, float | str] = field(default_factory=dict)
    duration_s: float = 0.0
    log_tail: str = ""
    error: str = ""
    log_path: str = ""  # absolute, for local use only: never stored (stored_resources)
    seed: int | None = None  # the LABSWARM_SEED the run got (None: none was set)
    # Non-empty: the run broke a rule of the metric (a second summary, a harness result
    # missing or disagreeing, a non-causal model); the reason in words. Such a run has
    # status "crash" and no metric, so a reader that ignores this field never keeps it.
    invalid: str = ""

    def stored_resources(self, base: Path | None = None) -> dict[str, Any]:
        """What a record may keep: the summary, the exit code, and the log's name relative
        to ``base`` (the swarm directory) -- never an absolute path."""
        log = Path(self.log_path) if self.log_path else None
        name = ""
        if log is not None:
            try:
                name = log.resolve().relative_to(Path(base).resolve()).as_posix() if base else ""
            except ValueError:
                name = ""
            name = name or log.name
        return {**self.summary, "returncode": self.returncode, "log": name}


# ---------------------------------------------------------------------------
# Environment and redaction
# ---------------------------------------------------------------------------


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{value: name}`` of every secret-named variable here (values of 6+ characters)."""
    env = os.environ if environ is None else environ
    return {
        value: name
        for name, value in env.items()
        if is_secret_name(name) and len(value) >= MIN_SECRET_LEN
    }


def _passes(name: str) -> bool:
    if is_secret_name(name):
        return False
    return name in PASS_THROUGH or name.startswith(("LC_", "PYTHON"))


def run_env(
    task: Task,
    device: Device,
    budget: float,
    *,
    sandbox_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    seed: int | None = None,
    result_file: Path | None = None,
) -> dict[str, str]:
    """The environment a run gets (see the module docstring).

    ``seed`` becomes ``LABSWARM_SEED`` and ``result_file`` ``LABSWARM_RESULT`` (each only
    when given: a set-up step gets neither).

    ``sandbox_dir``: the run is sandboxed in that workspace; its home and ``/tmp`` are
    read-only, so temporary files (``TMPDIR``) and caches that follow ``XDG_CACHE_HOME``/
    ``TRITON_CACHE_DIR`` go to a private directory in the workspace (unless the task's
    ``[env]`` says otherwise).
    """
    parent = os.environ if environ is None else environ
    env = {k: v for k, v in parent.items() if _passes(k)}
    if sandbox_dir is not None:
        private = Path(sandbox_dir).resolve() / PRIVATE_DIR
        env["XDG_CACHE_HOME"] = str(private / "cache")
        env["TRITON_CACHE_DIR"] = str(private / "triton")
        env["TMPDIR"] = str(private / "tmp")  # /tmp itself is read-only in the sandbox
    env.update({k: v for k, v in task.env.items() if not is_secret_name(k)})
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
    if seed is not None:
        env[SEED_ENV] = str(seed)
    if result_file is not None:
        env[RESULT_ENV] = str(result_file)
    return env


class Redactor:
    """Replaces secret values with ``[redacted:NAME]``, the workspace with ``<workspace>``
    and the home directory with ``~`` in text a run returns."""

    def __init__(self, workdir: Path | None = None, environ: Mapping[str, str] | None = None):
        secrets = secret_values(environ)
        self.pairs: list[tuple[str, str]] = [
            (value, f"[redacted:{secrets[value]}]")
            for value in sorted(secrets, key=len, reverse=True)
        ]
        if workdir is not None:
            for form in sorted({str(Path(workdir)), str(Path(workdir).resolve())}, key=len)[::-1]:
                self.pairs.append((form, "<workspace>"))
        home = (os.environ if environ is None else environ).get("HOME", "")
        if len(home) > 1:
            self.pairs.append((home.rstrip("/") + "/", "~/"))

    def __call__(self, text: str) -> str:
        for old, new in self.pairs:
            if old in text:
                text = text.replace(old, new)
        return text

    def summary(self, summary: dict[str, float | str]) -> dict[str, float | str]:
        return {self(k): self(v) if isinstance(v, str) else v for k, v in summary.items()}


# ---------------------------------------------------------------------------
# Parsing the output
# ---------------------------------------------------------------------------


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


def summary_blocks(text: str, name: str) -> int:
    """How many summary blocks carry ``name``: ``---`` lines followed (before the next
    ``---`` line) by a ``name: value`` line, as :func:`parse_summary` reads them."""
    count, open_block, counted = 0, False, False
    for line in text.splitlines():
        if line.strip() == "---":
            open_block, counted = True, False
            continue
        key, sep, _ = line.partition(":")
        if open_block and not counted and sep and key.strip() == name:
            count += 1
            counted = True
    return count


def read_results(path: Path) -> list[dict[str, Any]]:
    """The result lines a protected evaluator appended to ``path`` (none if it is absent).

    Raises ``ValueError`` naming the line for a line that is not a JSON object with a
    ``metric`` and either a ``value`` or an ``error``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not (isinstance(obj, dict) and "metric" in obj and ("value" in obj or "error" in obj)):
            raise ValueError(f"line {number} is not a result line: {line[:200]!r}")
        lines.append(obj)
    return lines


def harness_verdict(
    name: str, printed: float, results: list[dict[str, Any]]
) -> tuple[float | None, str]:
    """``(metric, "")`` or ``(None, why the run is invalid)`` for a task whose protected
    evaluator reports ``name`` (``[metric].harness``): exactly one result line, not an error,
    naming ``name``, whose value the printed one matches within printing precision
    (relative 1e-5 or absolute 1e-6). The metric is the harness value, never the printed one."""
    errors = [str(r["error"]) for r in results if "error" in r]
    if errors:
        return None, errors[0]
    if not results:
        return None, (
            f"the protected evaluation wrote no result (${RESULT_ENV} is empty): the program "
            f"printed {name} {printed:g} without the task's evaluator scoring it"
        )
    if len(results) > 1:
        values = ", ".join(f"{r.get('value')!r}" for r in results[:5])
        return None, (
            f"the protected evaluation ran {len(results)} times ({values}); a run must "
            "evaluate once"
        )
    result = results[0]
    if result.get("metric") != name:
        return None, (
            f"the protected evaluation reported {result.get('metric')!r}, not the task's {name!r}"
        )
    value = result.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"the protected evaluation's value is not a number: {value!r}"
    value = float(value)
    if not math.isclose(printed, value, rel_tol=PRINT_REL_TOL, abs_tol=PRINT_ABS_TOL):
        return None, (
            f"printed {name} {printed!r} disagrees with the protected evaluation's {value!r}"
        )
    return value, ""


def match_metric(pattern: str, text: str) -> str | None:
    """The group of the LAST match of ``pattern`` (multi-line mode) in ``text``, or None."""
    matches = list(re.finditer(pattern, text, re.MULTILINE))
    return matches[-1].group(1) if matches else None


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


# ---------------------------------------------------------------------------
# Running a command
# ---------------------------------------------------------------------------


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


def _resolve_sandbox(mode: SandboxMode | None) -> bool:
    """None: the ``LABSWARM_SANDBOX`` setting (read through the one settings class)."""
    return sandbox_enabled(get_settings().sandbox if mode is None else mode)


def _execute(
    argv: list[str],
    task: Task,
    workdir: Path,
    device: Device,
    budget: float,
    log_path: Path,
    *,
    timeout: float,
    stop: threading.Event | None,
    on_start: Callable[[int], None] | None,
    sandbox: SandboxMode | None,
    redact: Redactor,
    seed: int | None = None,
    result_file: Path | None = None,
    memory_gb: float = 0.0,
) -> RunResult:
    """Run ``argv`` to its end, the timeout, a stop or, with ``memory_gb`` > 0, until its
    process group holds more than that much memory (:func:`group_memory_bytes`); the
    result has no metric yet."""
    sandboxed = _resolve_sandbox(sandbox)
    env = run_env(
        task,
        device,
        budget,
        sandbox_dir=workdir if sandboxed else None,
        seed=seed,
        result_file=result_file,
    )
    if sandboxed:
        for sub in ("cache", "triton", "tmp"):
            (Path(workdir) / PRIVATE_DIR / sub).mkdir(parents=True, exist_ok=True)
        argv = wrap(argv, workdir, gpu=device.kind == "cuda", network=task.network)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
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
                error=redact(f"cannot start {argv[0]!r}: {exc}"),
                log_path=str(log_path),
                seed=seed,
            )
        pgid = proc.pid
        if on_start:
            on_start(pgid)
        reason: RunStatus | Literal["memory"] | None = None
        held, next_look = 0.0, started + MEMORY_POLL_S
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if memory_gb > 0 and time.monotonic() >= next_look:
                began = time.monotonic()
                held = group_memory_bytes(pgid) / 2**30
                took = time.monotonic() - began
                next_look = began + max(MEMORY_POLL_S, took / MEMORY_POLL_SHARE)
            if time.monotonic() - started > timeout:
                reason = "timeout"
            elif stop is not None and stop.is_set():
                reason = "interrupted"
            elif memory_gb > 0 and held > memory_gb:
                reason = "memory"
            if reason:
                _kill_group(pgid)
                proc.wait()
                break
        _kill_group(pgid, grace=0.5)  # children the program left behind
    tail = redact(_tail(log_path))
    result = RunResult(
        status="ok",
        returncode=proc.returncode,
        metric=None,
        duration_s=round(time.monotonic() - started, 3),
        log_tail=tail,
        log_path=str(log_path),
        seed=seed,
    )
    if reason == "timeout":
        result.status = "timeout"
        result.error = f"killed at the hard timeout of {timeout:g} s (budget {budget:g} s)"
    elif reason == "interrupted":
        result.status = "interrupted"
        result.error = "the swarm stopped while this run was in flight"
    elif reason == "memory":
        result.status = "crash"
        result.error = (
            f"{OUT_OF_MEMORY}: killed holding {held:.2f} GiB, over the run's limit of "
            f"{memory_gb:.2f} GiB ([budget].memory_gb; default: its share of this machine)"
        )
    elif proc.returncode != 0:
        result.status = "crash"
        last = _last_error_line(tail)
        result.error = f"exit code {proc.returncode}" + (f": {last}" if last else "")
    return result


@dataclass(frozen=True)
class ProcStat:
    """One process as ``/proc/<pid>/stat`` shows it: its state letter (``Z``: a zombie,
    ``X``: dead) and its resident set in pages."""

    pid: int
    state: str
    rss_pages: int


def group_members(pgid: int) -> list[ProcStat]:
    """Every process of process group ``pgid``, zombies included, from one scan of
    ``/proc/*/stat`` ([] where there is no ``/proc``)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        # after "pid (comm) " (comm may hold ") "): state ppid pgrp ..., rss the 22nd field
        fields = stat[stat.rfind(b")") + 2 :].split()
        try:
            if len(fields) > 21 and int(fields[2]) == pgid:
                found.append(ProcStat(int(pid), fields[0].decode("ascii"), int(fields[21])))
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def _pss_bytes(pid: int) -> int | None:
    """The proportional set size of ``pid`` (the ``Pss:`` line of its ``smaps_rollup``).

    0 for a process that has exited since it was listed: its memory is released, and the
    resident set its listing showed is stale (a data-loader worker ending between the two
    reads would otherwise count its shared pages in full). None where the file cannot be
    read for another reason (no permission, kernel before 4.14)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024  # kB
    except ProcessLookupError:  # ESRCH: exiting or a zombie, no address space left
        return 0
    except FileNotFoundError:
        return 0 if not os.path.exists(f"/proc/{pid}") else None  # reaped, or an old kernel
    except (OSError, ValueError, IndexError):
        return None
    return 0  # read, but no address space to report


def group_memory_bytes(pgid: int) -> int:
    """Memory held by process group ``pgid``, in bytes: the sum of its live members'
    proportional set sizes, so that a page several processes share (a parent and the
    children it forked, copy-on-write: data-loader workers) counts once in all, split
    between them. A member that exits while it is measured counts 0; one whose
    ``smaps_rollup`` cannot be read for another reason counts its resident set
    (``/proc/<pid>/stat``). 0 where there is no ``/proc``."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for member in group_members(pgid):
        if member.state in ("Z", "X"):
            continue  # dead: holds no memory
        pss = _pss_bytes(member.pid)
        total += member.rss_pages * page if pss is None else pss
    return total


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
    sandbox: SandboxMode | None = None,
    seed: int | None = None,
) -> RunResult:
    """Run the task command in ``workdir``; never raises for a failing program.

    ``seed``: the run's ``LABSWARM_SEED`` (None: not set). ``LABSWARM_RESULT`` names
    :func:`result_path` for this log's name, removed before the run. ``sandbox``:
    ``auto``/``off``/``require``; None reads the ``LABSWARM_SANDBOX`` setting. A run whose
    processes hold more resident memory than the task's ``[budget].memory_gb`` (default:
    :func:`agents.devices.memory_share_gb` of the device) is killed as a ``crash`` that
    says so, before the kernel's out-of-memory killer picks a victim on its own (the swarm,
    the memory server, another agent's run).
    """
    timeout = task.hard_timeout(budget) if timeout is None else timeout
    redact = Redactor(workdir)
    results_file = result_path(workdir, Path(log_path).stem)
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.unlink(missing_ok=True)
    result = _execute(
        task.argv(python),
        task,
        workdir,
        device,
        budget,
        log_path,
        timeout=timeout,
        stop=stop,
        on_start=on_start,
        sandbox=sandbox,
        redact=redact,
        seed=seed,
        result_file=results_file,
        memory_gb=task.memory_gb or memory_share_gb(device),
    )
    if result.returncode is None or result.status in ("timeout", "interrupted"):
        return result
    text = log_path.read_text(encoding="utf-8", errors="replace")
    result.summary = redact.summary(parse_summary(text))
    harness: list[dict[str, Any]] = []
    if task.metric_harness:
        try:
            harness = read_results(results_file)
        except ValueError as exc:
            return _invalid(result, redact(f"the protected evaluation's result file: {exc}"))
        errors = [str(r["error"]) for r in harness if "error" in r]
        if errors:  # a failed check (a non-causal model) is invalid even if it exited 1
            return _invalid(result, redact(errors[0]))
    if result.status != "ok":
        return result
    name = task.metric_name
    value: float | str | None
    if task.metric_pattern is not None:
        raw = match_metric(task.metric_pattern, text)
        if raw is None:
            result.status = "crash"
            result.error = f"no match for [metric].pattern {task.metric_pattern!r} in the output"
            return result
        try:
            value = float(raw)
        except ValueError:
            value = redact(raw)
        result.summary.setdefault(name, value)
        where = "[metric].pattern"
    else:
        blocks = summary_blocks(text, name)
        if blocks > 1:
            return _invalid(
                result,
                f"the output holds {blocks} summary blocks ('---' then '{name}: ...'); only "
                f"one may carry the metric (the last says {name} {result.summary.get(name)!r})",
            )
        value = result.summary.get(name)
        where = "the summary"
        if value is None:
            result.status = "crash"
            result.error = f"no '{name}' in the summary after the last '---' line"
            return result
    if not isinstance(value, float):
        result.status = "crash"
        result.error = f"'{name}' from {where} is not a number: {value!r}"
    elif not math.isfinite(value):
        result.status = "crash"
        result.error = f"'{name}' is {value} (NaN or infinite)"
    elif task.metric_harness:
        metric, why = harness_verdict(name, value, harness)
        if why:
            return _invalid(result, redact(why))
        result.metric = metric
    else:
        result.metric = value
    return result


def _invalid(result: RunResult, why: str) -> RunResult:
    """Mark ``result`` invalid for ``why``: no metric, status ``crash``, the reason as error."""
    result.status = "crash"
    result.metric = None
    result.invalid = why
    result.error = why
    return result


def run_setup(
    task: Task,
    workdir: Path,
    device: Device,
    log_path: Path,
    *,
    stop: threading.Event | None = None,
    on_start: Callable[[int], None] | None = None,
    python: str | None = None,
    sandbox: SandboxMode | None = None,
) -> RunResult:
    """Run the task's ``setup`` command in ``workdir`` with the environment and sandbox of
    a run (budget: the task's for the device kind); ``ok`` means exit code 0."""
    if not task.setup:
        raise ValueError(f"task {task.name!r} has no setup command")
    return _execute(
        task.setup_argv(python),
        task,
        workdir,
        device,
        task.default_budget(device.kind),
        log_path,
        timeout=task.setup_timeout,
        stop=stop,
        on_start=on_start,
        sandbox=sandbox,
        redact=Redactor(workdir),
    )
