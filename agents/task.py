"""Load and validate a task: a directory with a ``task.toml`` (format in ``docs/tasks.md``).

The file is validated by one pydantic model, :class:`TaskSpec` (unknown fields are errors);
a bad field fails with :class:`TaskError`, whose message names the file and the field::

    from agents.task import load_task
    task = load_task("trainer")          # or any directory holding a task.toml
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

TASK_FILE = "task.toml"
DEFAULT_BUDGET_ENV = "LABSWARM_TIME_BUDGET"

# Environment variable names a run never gets, even when a task's [env] names them: the
# runner drops them from the run's environment and redacts their values from its output.
SECRET_NAME = re.compile(r"^LABSWARM_TOKEN$|_API_KEY$|_TOKEN$|SECRET|PASSWORD", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True for ``LABSWARM_TOKEN``, ``*_API_KEY``, ``*_TOKEN``, ``*SECRET*``, ``*PASSWORD*``."""
    return bool(SECRET_NAME.search(name))


class TaskError(ValueError):
    """A task directory or its ``task.toml`` is unusable; the message names file and field."""


# ---------------------------------------------------------------------------
# The task.toml schema
# ---------------------------------------------------------------------------


def _split_command(value: object) -> object:
    """``run``/``setup``: a string is split like a shell line; a list is the argv."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell line: {exc}") from None
    if isinstance(value, list):
        if not all(isinstance(part, str) for part in value):
            raise ValueError("must be a string or a list of strings")
        return value
    raise ValueError("must be a string or a list of strings")


def _one_or_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _env_value(value: object) -> object:
    """``[env]`` values reach the program as strings (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError("must be a string, number or boolean")


Command = Annotated[list[str], BeforeValidator(_split_command)]
Paths = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_one_or_list)]
Seconds = Annotated[float, Field(ge=0)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]


def _env_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not an environment variable name")
    if is_secret_name(name):
        raise ValueError(
            f"{name!r} looks like a secret (LABSWARM_TOKEN, *_API_KEY, *_TOKEN, *SECRET*, "
            "*PASSWORD*); runs never get such variables"
        )
    return name


EnvName = Annotated[str, AfterValidator(_env_name)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MetricSpec(_Table):
    """``[metric]``: which number a run produces, which way is better, the range a real
    value can fall in, and whether a protected evaluator reports it (``harness``)."""

    name: str
    direction: Literal["minimize", "maximize"] = "minimize"
    pattern: str | None = None  # a regex with one group over the run's output
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None  # plausible range
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None
    harness: bool = False  # the protected evaluator appends the value to $LABSWARM_RESULT

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            groups = re.compile(value, re.MULTILINE).groups
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        if groups != 1:
            raise ValueError(f"must have exactly one group (the number), found {groups}")
        return value


class BudgetSpec(_Table):
    """``[budget]``: seconds per run on each device kind, and the hard limits."""

    env: str = DEFAULT_BUDGET_ENV
    cpu: Annotated[float, Field(gt=0)] = 60.0
    cuda: Annotated[float, Field(gt=0)] = 300.0
    timeout: Seconds = 0.0  # 0: 2 * budget + 120
    setup_timeout: Annotated[float, Field(gt=0)] = 3600.0
    memory_gb: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0  # 0: the run's share

    @field_validator("env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"must be an environment variable name, not {value!r}")
        if is_secret_name(value):
            raise ValueError(f"{value!r} looks like a secret; runs never get such variables")
        return value


class NoiseSpec(_Table):
    """``[noise]``: what the task declares about its run-to-run noise."""

    # A floor under the measured standard deviation (metric units), e.g. for a program
    # whose repetitions come out identical.
    min: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


Bound = Annotated[float | int, Field(allow_inf_nan=False)]
Choice = bool | int | float | str


class SpaceSpec(_Table):
    """``[space.NAME]``: the values the builtin proposer may give one knob -- a range
    (``low``, ``high``, optionally ``log`` or ``step``) or a list of ``choices``."""

    low: Bound | None = None
    high: Bound | None = None
    log: bool = False
    step: Annotated[float | int, Field(gt=0, allow_inf_nan=False)] | None = None
    choices: list[Choice] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SpaceSpec:
        ranged = self.low is not None or self.high is not None or self.log or self.step
        if self.choices is not None:
            if ranged:
                raise ValueError("choices: give either choices or low/high (log, step), not both")
            if len({(type(c), c) for c in self.choices}) < 2:
                raise ValueError("choices: must list at least two different values")
            return self
        if self.low is None or self.high is None:
            raise ValueError("low: a range needs both low and high (or give choices)")
        if not self.low < self.high:
            raise ValueError(f"high: must be greater than low ({self.low:g}), got {self.high:g}")
        if self.log and self.step is not None:
            raise ValueError("step: a log range cannot have a step")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log range must start above 0, got {self.low:g}")
        return self


class SandboxSpec(_Table):
    """``[sandbox]``: what a sandboxed run may reach besides its workspace."""

    network: bool = False


class TaskSpec(_Table):
    """The whole ``task.toml``. Validate with ``context={"root": <task directory>}``."""

    name: str
    description: str = ""
    editable: Paths
    protected: Paths = []
    run: Command
    setup: Command | None = None
    notes: str | None = None
    knobs: Paths = []
    metric: MetricSpec
    budget: BudgetSpec = BudgetSpec()
    noise: NoiseSpec = NoiseSpec()
    space: dict[str, SpaceSpec] = {}
    sandbox: SandboxSpec = SandboxSpec()
    env: dict[EnvName, EnvValue] = {}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("editable", "notes")
    @classmethod
    def _inside(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        root: Path = (info.context or {})["root"]
        rels = [value] if isinstance(value, str) else value
        out = []
        for rel in rels:
            p = Path(rel)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"{rel!r} must be a path inside the task directory")
            if not (root / p).is_file():
                raise ValueError(f"file {p.as_posix()!r} does not exist in {root}")
            if not (root / p).resolve().is_relative_to(root.resolve()):
                raise ValueError(f"{rel!r} is a link to a file outside the task directory")
            out.append(p.as_posix())
        if info.field_name == "editable" and not out:
            raise ValueError("must name at least one file")
        return out[0] if isinstance(value, str) else out

    @field_validator("protected")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        for glob in value:
            if glob.startswith("/") or ".." in Path(glob).parts:
                raise ValueError(f"{glob!r} must match paths inside the task directory")
        return value

    @field_validator("run", "setup")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("knobs")
    @classmethod
    def _knobs(cls, value: list[str]) -> list[str]:
        for knob in value:
            if not knob.isidentifier():
                raise ValueError(f"{knob!r} is not a Python identifier")
        return value

    @field_validator("space")
    @classmethod
    def _space_names(cls, value: dict[str, SpaceSpec]) -> dict[str, SpaceSpec]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a knob name (a Python identifier)")
        return value

    @model_validator(mode="after")
    def _editable_not_protected(self) -> TaskSpec:
        for rel in self.editable:
            if any(fnmatch.fnmatchcase(rel, pat) for pat in self.protected):
                raise ValueError(f"protected: {rel!r} is both editable and protected")
        return self

    @model_validator(mode="after")
    def _metric_range(self) -> TaskSpec:
        low, high = self.metric.min, self.metric.max
        if low is not None and high is not None and not low < high:
            raise ValueError(f"metric.max: must be greater than metric.min ({low:g}), got {high:g}")
        return self


def _why(error: Any) -> str:
    """One pydantic error as the end of a TaskError message."""
    kind, msg = error["type"], str(error["msg"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    given = error.get("input")
    shown = f"{given!r}" if not isinstance(given, dict | list) else type(given).__name__
    return f"{msg[0].lower()}{msg[1:]}, got {shown}"


def task_error(path: Path, exc: ValidationError) -> TaskError:
    """The one adapter: ``ValidationError`` -> ``TaskError("<file>: field '<f>': <why>")``."""
    first = exc.errors()[0]
    parts = [str(p) for p in first["loc"] if not isinstance(p, int) and p != "[key]"]
    why = _why(first)
    if not parts:  # a model-level check names its field at the start of its message
        field, _, why = why.partition(": ")
        parts = [field]
    return TaskError(f"{path}: field '{'.'.join(parts)}': {why}")


# ---------------------------------------------------------------------------
# The validated task
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A validated task (built from :class:`TaskSpec`; the defaults live there).

    Paths in ``editable`` are relative to ``root``; ``run`` and ``setup`` are argv
    templates in which ``{python}`` is replaced by the interpreter.
    """

    root: Path
    name: str
    description: str
    editable: tuple[str, ...]
    protected: tuple[str, ...]
    run: tuple[str, ...]
    setup: tuple[str, ...]  # empty: no set-up step
    notes: str  # text of the notes file ("" if none)
    knobs: tuple[str, ...]  # empty: UPPER_CASE module constants found by AST
    metric_name: str
    direction: Literal["minimize", "maximize"]
    metric_pattern: str | None  # None: the `---` summary
    metric_min: float | None  # the plausible range of the metric (None: unbounded)
    metric_max: float | None
    metric_harness: bool  # a protected evaluator writes the value to $LABSWARM_RESULT
    noise_min: float | None  # declared floor of the run-to-run standard deviation
    space: dict[str, SpaceSpec]  # declared knob ranges ([space.NAME]); others: the default box
    budget_env: str
    budget_cpu: float
    budget_cuda: float
    timeout: float  # 0: 2 * budget + 120
    setup_timeout: float
    memory_gb: float  # a run's memory limit in GiB; 0: its share of the machine
    network: bool  # a sandboxed run may use the network
    env: dict[str, str]

    @classmethod
    def from_spec(cls, spec: TaskSpec, root: Path, notes: str = "") -> Task:
        protected = list(spec.protected)
        if TASK_FILE not in protected:
            protected.append(TASK_FILE)  # the declaration itself is never editable
        return cls(
            root=root,
            name=spec.name,
            description=spec.description,
            editable=tuple(spec.editable),
            protected=tuple(protected),
            run=tuple(spec.run),
            setup=tuple(spec.setup or ()),
            notes=notes,
            knobs=tuple(spec.knobs),
            metric_name=spec.metric.name,
            direction=spec.metric.direction,
            metric_pattern=spec.metric.pattern,
            metric_min=spec.metric.min,
            metric_max=spec.metric.max,
            metric_harness=spec.metric.harness,
            noise_min=spec.noise.min,
            space=dict(spec.space),
            budget_env=spec.budget.env,
            budget_cpu=spec.budget.cpu,
            budget_cuda=spec.budget.cuda,
            timeout=spec.budget.timeout,
            setup_timeout=spec.budget.setup_timeout,
            memory_gb=spec.budget.memory_gb,
            network=spec.sandbox.network,
            env=dict(spec.env),
        )

    def default_budget(self, device_kind: str) -> float:
        """The task's budget in seconds for a ``cpu`` or ``cuda`` device."""
        return self.budget_cuda if device_kind == "cuda" else self.budget_cpu

    def hard_timeout(self, budget: float) -> float:
        """Seconds after which a run's whole process group is killed."""
        return self.timeout if self.timeout > 0 else 2 * budget + 120

    def argv(self, python: str | None = None) -> list[str]:
        """The run command with ``{python}`` filled in (default: this interpreter)."""
        return _fill(self.run, python)

    def setup_argv(self, python: str | None = None) -> list[str]:
        """The set-up command with ``{python}`` filled in (empty: none)."""
        return _fill(self.setup, python)

    def is_protected(self, relpath: str) -> bool:
        """True if ``relpath`` (POSIX, relative to the task root) matches a protected glob."""
        return any(fnmatch.fnmatchcase(relpath, pattern) for pattern in self.protected)

    def better(self, a: float, b: float) -> bool:
        """True if metric ``a`` is strictly better than ``b`` in this task's direction."""
        return a < b if self.direction == "minimize" else a > b


def _fill(template: tuple[str, ...], python: str | None) -> list[str]:
    exe = python or sys.executable
    return [part.replace("{python}", exe) for part in template]


def builtin_task_dir() -> Path:
    """Directory of the built-in ``trainer`` task (located, never imported)."""
    spec = importlib.util.find_spec("trainer")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError("the built-in task package 'trainer' is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


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
    try:
        spec = TaskSpec.model_validate(data, context={"root": root})
    except ValidationError as exc:
        raise task_error(path, exc) from None
    notes = (root / spec.notes).read_text(encoding="utf-8") if spec.notes else ""
    return Task.from_spec(spec, root, notes)
