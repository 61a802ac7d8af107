"""Load and validate a task: a directory with a ``task.toml`` (format in ``docs/tasks.md``).

A bad field fails with :class:`TaskError`, whose message names the file and the field::

    from agents.task import load_task
    task = load_task("trainer")          # or any directory holding a task.toml
"""

from __future__ import annotations

import fnmatch
import importlib.util
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TASK_FILE = "task.toml"
DEFAULT_BUDGET_ENV = "LABSWARM_TIME_BUDGET"
_TOP_KEYS = {"name", "description", "editable", "protected", "run", "notes", "knobs"}
_TABLES = {"metric", "budget", "env"}
_BUDGET_KEYS = {"env", "cpu", "cuda", "timeout"}


class TaskError(ValueError):
    """A task directory or its ``task.toml`` is unusable; the message names file and field."""


@dataclass(frozen=True)
class Task:
    """A validated task. Paths in ``editable`` are relative to ``root``."""

    root: Path
    name: str
    description: str
    editable: tuple[str, ...]
    protected: tuple[str, ...]
    run: tuple[str, ...]  # argv template; "{python}" is replaced by the interpreter
    notes: str  # text of the notes file ("" if none)
    knobs: tuple[str, ...]  # empty: UPPER_CASE module constants found by AST
    metric_name: str
    direction: Literal["minimize", "maximize"]
    budget_env: str = DEFAULT_BUDGET_ENV
    budget_cpu: float = 60.0
    budget_cuda: float = 300.0
    timeout: float = 0.0  # 0: 2 * budget + 120
    env: dict[str, str] = field(default_factory=dict)

    def default_budget(self, device_kind: str) -> float:
        """The task's budget in seconds for a ``cpu`` or ``cuda`` device."""
        return self.budget_cuda if device_kind == "cuda" else self.budget_cpu

    def hard_timeout(self, budget: float) -> float:
        """Seconds after which a run's whole process group is killed."""
        return self.timeout if self.timeout > 0 else 2 * budget + 120

    def argv(self, python: str | None = None) -> list[str]:
        """The run command with ``{python}`` filled in (default: this interpreter)."""
        exe = python or sys.executable
        return [part.replace("{python}", exe) for part in self.run]

    def is_protected(self, relpath: str) -> bool:
        """True if ``relpath`` (POSIX, relative to the task root) matches a protected glob."""
        return any(fnmatch.fnmatchcase(relpath, pattern) for pattern in self.protected)

    def better(self, a: float, b: float) -> bool:
        """True if metric ``a`` is strictly better than ``b`` in this task's direction."""
        return a < b if self.direction == "minimize" else a > b


def builtin_task_dir() -> Path:
    """Directory of the built-in ``trainer`` task (located, never imported)."""
    spec = importlib.util.find_spec("trainer")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError("the built-in task package 'trainer' is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _fail(path: Path, key: str, why: str) -> TaskError:
    return TaskError(f"{path}: field '{key}': {why}")


def _str(
    path: Path, data: dict[str, Any], key: str, default: str | None = None, label: str = ""
) -> str:
    label = label or key
    if key not in data:
        if default is None:
            raise _fail(path, label, "is required")
        return default
    value = data[key]
    if not isinstance(value, str):
        raise _fail(path, label, f"must be a string, got {type(value).__name__}")
    return value


def _str_list(path: Path, data: dict[str, Any], key: str, required: bool = False) -> list[str]:
    if key not in data:
        if required:
            raise _fail(path, key, "is required")
        return []
    value = data[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(path, key, "must be a list of non-empty strings")
    return list(value)


def _number(path: Path, table: dict[str, Any], key: str, default: float, name: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, name, f"must be a number of seconds, got {value!r}")
    if value < 0:
        raise _fail(path, name, f"must not be negative, got {value!r}")
    return float(value)


def _safe_relpath(path: Path, key: str, rel: str) -> str:
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise _fail(path, key, f"{rel!r} must be a path inside the task directory")
    return p.as_posix()


def load_task(directory: str | Path | None = None) -> Task:
    """Load ``directory/task.toml`` (default: the built-in ``trainer`` task) and validate it."""
    root = Path(directory).expanduser().resolve() if directory else builtin_task_dir()
    if root.is_file() and root.name == TASK_FILE:
        root = root.parent
    path = root / TASK_FILE
    if not root.is_dir():
        raise TaskError(f"{root}: task directory does not exist")
    if not path.is_file():
        raise TaskError(f"{path}: no {TASK_FILE} in the task directory")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskError(f"{path}: not valid TOML: {exc}") from None

    unknown = set(data) - _TOP_KEYS - _TABLES
    if unknown:
        raise _fail(path, sorted(unknown)[0], "unknown field")

    name = _str(path, data, "name").strip()
    if not name:
        raise _fail(path, "name", "must not be empty")
    description = _str(path, data, "description", "")

    editable = [_safe_relpath(path, "editable", e) for e in _str_list(path, data, "editable", True)]
    if not editable:
        raise _fail(path, "editable", "must name at least one file")
    for rel in editable:
        if not (root / rel).is_file():
            raise _fail(path, "editable", f"file {rel!r} does not exist in {root}")
    protected = _str_list(path, data, "protected")
    for rel in editable:
        if any(fnmatch.fnmatchcase(rel, pat) for pat in protected):
            raise _fail(path, "protected", f"{rel!r} is both editable and protected")
    if TASK_FILE not in protected:
        protected.append(TASK_FILE)  # the declaration itself is never editable

    run_raw = data.get("run")
    if isinstance(run_raw, str):
        try:
            run = shlex.split(run_raw)
        except ValueError as exc:
            raise _fail(path, "run", f"cannot be split like a shell line: {exc}") from None
    elif isinstance(run_raw, list) and all(isinstance(a, str) for a in run_raw):
        run = list(run_raw)
    elif run_raw is None:
        raise _fail(path, "run", "is required")
    else:
        raise _fail(path, "run", "must be a string or a list of strings")
    if not run:
        raise _fail(path, "run", "must not be empty")

    notes = ""
    if "notes" in data:
        notes_rel = _safe_relpath(path, "notes", _str(path, data, "notes"))
        notes_path = root / notes_rel
        if not notes_path.is_file():
            raise _fail(path, "notes", f"file {notes_rel!r} does not exist in {root}")
        notes = notes_path.read_text(encoding="utf-8")

    knobs = _str_list(path, data, "knobs")
    for knob in knobs:
        if not knob.isidentifier():
            raise _fail(path, "knobs", f"{knob!r} is not a Python identifier")

    metric = data.get("metric")
    if not isinstance(metric, dict):
        raise _fail(path, "metric", "table [metric] is required")
    for table_name, keys in (("metric", {"name", "direction"}), ("budget", _BUDGET_KEYS)):
        table = data.get(table_name, {})
        extra = sorted(set(table) - keys) if isinstance(table, dict) else []
        if extra:
            raise _fail(path, f"{table_name}.{extra[0]}", "unknown field")
    metric_name = _str(path, metric, "name", "", label="metric.name").strip()
    if not metric_name:
        raise _fail(path, "metric.name", "is required")
    direction = metric.get("direction", "minimize")
    if direction not in ("minimize", "maximize"):
        raise _fail(
            path, "metric.direction", f"must be 'minimize' or 'maximize', not {direction!r}"
        )

    budget = data.get("budget", {})
    if not isinstance(budget, dict):
        raise _fail(path, "budget", "must be a table")
    budget_env = budget.get("env", DEFAULT_BUDGET_ENV)
    if not isinstance(budget_env, str) or not budget_env.isidentifier():
        raise _fail(path, "budget.env", f"must be an environment variable name, not {budget_env!r}")
    budget_cpu = _number(path, budget, "cpu", 60.0, "budget.cpu")
    budget_cuda = _number(path, budget, "cuda", 300.0, "budget.cuda")
    for key, val in (("budget.cpu", budget_cpu), ("budget.cuda", budget_cuda)):
        if val <= 0:
            raise _fail(path, key, "must be positive")
    timeout = _number(path, budget, "timeout", 0.0, "budget.timeout")

    env_raw = data.get("env", {})
    if not isinstance(env_raw, dict):
        raise _fail(path, "env", "must be a table")
    env: dict[str, str] = {}
    for key, val in env_raw.items():
        if isinstance(val, dict | list):
            raise _fail(path, f"env.{key}", "must be a string, number or boolean")
        env[key] = str(val).lower() if isinstance(val, bool) else str(val)

    return Task(
        root=root,
        name=name,
        description=description,
        editable=tuple(editable),
        protected=tuple(protected),
        run=tuple(run),
        notes=notes,
        knobs=tuple(knobs),
        metric_name=metric_name,
        direction=direction,
        budget_env=budget_env,
        budget_cpu=budget_cpu,
        budget_cuda=budget_cuda,
        timeout=timeout,
        env=env,
    )
