"""The embedded swarm: one process, one memory owner, agents as threads, runs as
subprocesses, one device per agent.

1. Load the task, plan devices (one per agent), make each agent's workspace; record the
   hashes of the task directory's protected files (checked before every run).
2. Run the task's setup step in each workspace (an agent whose setup fails stops, and the
   failure is recorded).
3. Measure the noise: replicate runs of the swarm's root program on the agents' own
   devices, recorded with ``role=baseline`` (only this swarm's own replicates count).
4. Run every agent's graph in its own thread (SQLite checkpointer, one thread id each)
   until its experiment limit, the deadline, an exhausted search, or a stop.
5. ``resume``: reap runs a killed swarm left behind, record each cut-off run as
   ``interrupted`` and release its claim, then continue every agent from its checkpoint.

The root is the task's program, or, with ``start_from`` (``labswarm run --start-from``, an
explicit opt-in after the operator saw the diff), the program of that trace.

The swarm's directory (``runs/<swarm id>/``) holds ``swarm.json``, ``checkpoints.sqlite``,
the agents' workspaces and run logs, and at the end ``results.tsv`` and ``progress.png``.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agents.baseline import (
    DEFAULT_PRIOR_REPLICATES,
    FINALISTS_BY,
    RETEST,
    Baseline,
    BaselineError,
    Seat,
    finalists,
    measure_finalists,
    measure_noise,
    measure_priors,
)
from agents.board import AgentBoard, apply_event
from agents.context import DEFAULT_MAX_REFUSALS, AgentContext
from agents.devices import Device, plan_devices
from agents.execute import Bench, SetupFailed
from agents.idea import DEFAULT_NEAR_DUPLICATE, DEFAULT_NEAR_DUPLICATE_TRIES
from agents.judge import (
    DEFAULT_PROMOTE,
    DEFAULT_REMEASURE,
    DEFAULT_REPLICATES,
    DEFAULT_SCREEN,
    MIN_REPLICATES,
    Rules,
)
from agents.library import LineageError, ProgramLibrary, rebuild_for_review
from agents.nodes import candidate_fields, end_reason, short_id
from agents.program import Program, diff
from agents.proposers.base import Proposer
from agents.proposers.hybrid import DEFAULT_RATIO as HYBRID_RATIO
from agents.proposers.llm import MODEL_TIMEOUT_S, LLMProposer, make_chat_model
from agents.task import Task, load_task
from agents.tracing import Author, set_agent, setup_failure, write_trace
from agents.workspace import TaskRootChanged, Workspace, protected_hashes
from memory.base import Store
from memory.models import MIN_CHAMPION_RUNS, Status, SwarmCreate, new_id

log = logging.getLogger(__name__)

RUNS_DIR = Path("runs")
RECURSION_LIMIT = 1_000_000
# A swarm's seed is below this: agent i's sampler seed, seed * 1000 + i, stays a 32-bit
# seed (what numpy's and Optuna's samplers take) for up to 1,000 agents.
SEED_LIMIT = 4_000_000


class SwarmError(RuntimeError):
    """The swarm cannot start or go on (the message says why)."""


@dataclass
class SwarmConfig:
    """What ``labswarm run`` asks for. ``None`` means the default."""

    task: str | None = None  # task directory; None: the built-in trainer
    agents: int | None = None
    devices: str = "auto"
    budget: float | None = None  # seconds per run; None: the task's for the device kind
    max_experiments: int | None = None  # per agent
    hours: float | None = None
    proposer: str = "builtin"  # builtin | llm | hybrid
    moves: str = "whole"  # builtin: whole configurations | neighbour (one knob of the base)
    hybrid_ratio: int = HYBRID_RATIO  # hybrid: builtin proposals per LLM proposal
    model: str | None = None
    base_url: str | None = None
    # an OpenAI client's wait for one answer (--base-url servers, openai: models), seconds
    model_timeout_s: float = MODEL_TIMEOUT_S
    replicates: int = DEFAULT_REPLICATES
    # The sampler's seed (agent i draws with seed * 1000 + i); None: a new swarm draws one
    # (SwarmHome.open), saved in swarm.json, so --resume goes on with it and two swarms
    # started on empty memories do not propose the same configurations.
    seed: int | None = None
    runs_dir: str = str(RUNS_DIR)
    python: str | None = None
    quick_budget: float | None = None  # without --budget: cap a CPU run at this many seconds
    max_refusals: int = DEFAULT_MAX_REFUSALS  # proposals refused in a row before giving up
    # False: each agent recalls only its own traces before proposing (claims and the
    # duplicate refusal stay shared) -- the benchmark's "recall off" arm: no champion, no
    # search by meaning, no insights, near duplicates only of its own runs.
    recall: bool = True
    # Ablation switches, each turning off exactly one thing (docs/agents.md, "Switches"):
    semantic_recall: bool = True  # search memory by meaning (the base's and the draft's)
    refuse_near_duplicates: bool = True  # send a near-duplicate draft back to the proposer
    near_duplicate_threshold: float = DEFAULT_NEAR_DUPLICATE  # Store.search score
    near_duplicate_tries: int = DEFAULT_NEAR_DUPLICATE_TRIES  # refusals before a draft passes
    insights: bool = True  # give the proposer memory's insights
    follow_champion: bool = True  # move onto the champion when it beats the agent's base
    # A trace whose program becomes the swarm's root (re-measured as this swarm's own
    # baseline). Only set after the operator reviewed its diff (labswarm run --start-from).
    start_from: str | None = None
    cache_dir: str | None = None  # where local LLM weights are converted (LABSWARM_CACHE_DIR)
    # The keep rule (agents.judge): re-run a candidate with another seed before keeping it
    # (False: an ablation that judges one run), and the first run's screen in noise sds.
    confirm: bool = True
    screen: float = DEFAULT_SCREEN
    remeasure: int = DEFAULT_REMEASURE  # extra runs of each newly kept program
    # runs of each of the best configurations from elsewhere in memory (packs, other
    # hardware or budgets) before the agents start (agents.baseline.measure_priors); 0: none
    prior_replicates: int = DEFAULT_PRIOR_REPLICATES
    # multi-fidelity: each new program runs at this many seconds first and at the full
    # budget only if its short run ranks among the best ``promote`` of the short runs
    # (agents.judge.judge_short); None: every run at the full budget
    short_budget: float | None = None
    promote: float = DEFAULT_PROMOTE
    # after the agents finish: re-measure this many of the swarm's best programs (by the
    # mean of their runs, whatever their first run's verdict) MIN_CHAMPION_RUNS times each,
    # runs no verdict chose (agents.baseline.measure_finalists); 0: none. With confirm=False
    # and remeasure=0 the swarm's re-tests all come at its end (docs/judging.md)
    finalists: int = 0
    # how the finalists are chosen (agents.baseline.FINALISTS_BY): "mean" (of each
    # program's runs) or "model" (the mean a Gaussian process over the knob values of every
    # measured program predicts, agents.surrogate; builtin proposer, whole moves); None:
    # "model" where it can, else "mean" (resolve_retest)
    finalists_by: str | None = None
    # when the swarm re-tests (RETEST, resolve_retest): "each" -- a keep is confirmed and
    # re-measured as it happens (confirm, remeasure above); "end" -- none during the search,
    # the best programs re-measured after it (finalists); "auto" -- "end" for a builtin
    # swarm on whole moves with --max-experiments that asked nothing else of its re-tests
    retest: str = "auto"


def resolve_retest(config: SwarmConfig, n_agents: int, *, cluster: bool = False) -> SwarmConfig:
    """``config`` with its re-test plan settled (``retest`` "each" or "end", never "auto")
    and ``finalists_by`` chosen, or a :class:`SwarmError` naming the setting.

    "auto" is "end" for a swarm whose end is known in experiments (``max_experiments``) on
    the builtin proposer with whole moves and the re-test settings left at their defaults
    (confirmed keeps, ``DEFAULT_REMEASURE``, no finalists), with or without a short budget;
    otherwise "each", and on a Ray cluster always "each". "end" turns off the confirmation
    and the re-measures and sets ``finalists`` (when 0) to half the agents, at least one:
    measured on the yardstick at 8 agents (docs/benchmarks.md), where the per-keep re-tests
    took a third of the experiments and handed over worse than one shared Optuna study, and
    with short runs handed over better than per-keep re-tests at the same device-seconds."""
    if config.retest not in RETEST:
        raise SwarmError(f"retest: {config.retest!r} is not one of {', '.join(RETEST)}")
    whole_builtin = (config.proposer, config.moves) == ("builtin", "whole")
    by = config.finalists_by or ("model" if whole_builtin else "mean")
    mode = config.retest
    if mode == "auto":
        asked_nothing = (
            config.confirm and config.remeasure == DEFAULT_REMEASURE and config.finalists == 0
        )
        known_end = config.max_experiments is not None
        mode = "end" if whole_builtin and asked_nothing and known_end and not cluster else "each"
    if mode == "each":
        return replace(config, retest="each", finalists_by=by)
    if cluster:
        raise SwarmError(
            "retest: 'end' is not run on a Ray cluster yet (the embedded swarm re-measures "
            "its finalists after its agents finish); use --retest each"
        )
    if config.max_experiments is None and config.hours is None:
        raise SwarmError(
            "retest: 'end' re-tests after the search ends, so the search needs an end: "
            "give --max-experiments or --hours"
        )
    finalists = config.finalists or max(1, n_agents // 2)
    return replace(
        config, retest="end", confirm=False, remeasure=0, finalists=finalists, finalists_by=by
    )


# the finals' share of a planned swarm above which re-testing at the end measured behind one
# shared Optuna study (docs/benchmarks.md, "A swarm planned for fewer experiments": 8 of 16
# and 8 of 24 runs behind, 8 of 40 level)
SMALL_PLAN_FINALS_SHARE = 0.25


def finals_runs(config: SwarmConfig) -> int:
    """The runs of a resolved swarm's finals: each finalist re-measured
    ``MIN_CHAMPION_RUNS`` times (``agents.baseline.measure_finalists``)."""
    return config.finalists * MIN_CHAMPION_RUNS


def small_plan_warning(config: SwarmConfig, n_agents: int) -> str | None:
    """What to tell a person whose swarm re-tests at its end (``config`` resolved by
    :func:`resolve_retest`) when its finals take more than ``SMALL_PLAN_FINALS_SHARE`` of
    its planned experiments; None otherwise, or when the plan is not in experiments."""
    if config.retest != "end" or config.max_experiments is None:
        return None
    finals = finals_runs(config)
    total = config.max_experiments * n_agents + finals
    if finals <= SMALL_PLAN_FINALS_SHARE * total:
        return None
    return (
        f"retest: the finals ({config.finalists} programs x {MIN_CHAMPION_RUNS} runs) take "
        f"{finals} of this swarm's {total} experiments; planned this small, re-testing at "
        "the end handed over worse than one shared Optuna study on the yardstick "
        "(docs/benchmarks.md, 'A swarm planned for fewer experiments'); more "
        "--max-experiments leaves the search a larger share"
    )


def check_finalists(config: SwarmConfig) -> None:
    """A finalists count of 0 or more and a ranking the proposer allows, or a
    :class:`SwarmError` naming the setting."""
    if config.finalists < 0:
        raise SwarmError(f"finalists: {config.finalists} must be 0 or more")
    if config.finalists_by not in FINALISTS_BY:
        raise SwarmError(
            f"finalists_by: {config.finalists_by!r} is not one of {', '.join(FINALISTS_BY)}"
        )
    if config.finalists_by == "model" and (config.proposer, config.moves) != ("builtin", "whole"):
        raise SwarmError(
            "finalists_by: 'model' ranks programs by their knob values, so it needs the "
            f"builtin proposer on whole moves (got --proposer {config.proposer}, "
            f"--moves {config.moves})"
        )


def check_short_budget(config: SwarmConfig, budget: float) -> None:
    """A short budget below the swarm's ``budget`` and a promoted fraction in (0, 1], or a
    :class:`SwarmError` naming the setting."""
    short = config.short_budget
    if short is not None and not 0 < short < budget:
        raise SwarmError(
            f"short_budget: {short:g} s must be above 0 and below the swarm's budget of "
            f"{budget:g} s"
        )
    if not 0 < config.promote <= 1:
        raise SwarmError(f"promote: {config.promote:g} must be in (0, 1]")


def recall_switches(config: SwarmConfig) -> dict[str, Any]:
    """The ``AgentContext`` fields of ``config``'s recall settings and ablation switches."""
    return {"recall": config.recall, **ablation_switches(config)}


def ablation_switches(config: SwarmConfig) -> dict[str, Any]:
    """The ``AgentContext`` fields of ``config``'s ablation switches (``recall`` aside)."""
    return {
        "semantic_recall": config.semantic_recall,
        "refuse_near_duplicates": config.refuse_near_duplicates,
        "near_duplicate_threshold": config.near_duplicate_threshold,
        "near_duplicate_tries": config.near_duplicate_tries,
        "insights": config.insights,
        "follow_champion": config.follow_champion,
    }


def judge_rules(config: SwarmConfig, task: Task) -> Rules:
    """The keep rule's settings for a swarm: its config, and the task's declared plausible
    range and noise floor."""
    return Rules(
        confirm=config.confirm,
        screen=config.screen,
        remeasure=config.remeasure,
        promote=config.promote,
        suspect_to_finals=config.finalists > 0 and not config.confirm,
        metric_min=task.metric_min,
        metric_max=task.metric_max,
        noise_floor=task.noise_min,
    )


ProposerFactory = Callable[[Task, Program, Device, str, int], Proposer]


def recorded_space(
    config: SwarmConfig, task: Task, root: Program, device_kind: str
) -> dict[str, dict[str, Any]]:
    """What the builtin proposer searches, recorded with the swarm in memory (a change of
    space between swarms shows there); ``{}`` for the llm proposer (the hybrid's builtin
    side records its space too). A bad ``[space]`` declaration fails here, before any run
    (``TaskError`` naming the file and knob)."""
    if config.proposer not in ("builtin", "hybrid"):
        return {}
    from agents.proposers.builtin import describe_space, search_space

    return describe_space(search_space(task, root, device_kind))


def default_proposer_factory(config: SwarmConfig) -> ProposerFactory:
    """Builds one proposer per agent from ``config.proposer``/``model``/``base_url``."""
    if config.proposer == "builtin":
        from agents.proposers.builtin import BuiltinProposer

        def make_builtin(
            task: Task, root: Program, device: Device, name: str, seed: int
        ) -> Proposer:
            return BuiltinProposer(
                task, root, device.kind, device.hardware, seed=seed, moves=config.moves
            )

        return make_builtin
    if config.proposer in ("llm", "hybrid"):
        if not config.model:
            raise SwarmError(
                f"--proposer {config.proposer} needs --model (e.g. openai:gpt-4.1 or hf:/path.gguf)"
            )
        if config.proposer == "hybrid" and config.hybrid_ratio < 1:
            raise SwarmError(
                f"--hybrid-ratio: must be at least 1 builtin proposal per LLM proposal, "
                f"got {config.hybrid_ratio}"
            )
        cache = Path(config.cache_dir) if config.cache_dir else None
        chat = make_chat_model(
            config.model, config.base_url, cache_dir=cache, timeout_s=config.model_timeout_s
        )

        def make_llm(task: Task, root: Program, device: Device, name: str, seed: int) -> Proposer:
            if config.proposer == "llm":
                return LLMProposer(chat)
            from agents.proposers.builtin import BuiltinProposer
            from agents.proposers.hybrid import HybridProposer

            builtin = BuiltinProposer(
                task, root, device.kind, device.hardware, seed=seed, moves=config.moves
            )
            return HybridProposer(LLMProposer(chat), builtin, ratio=config.hybrid_ratio)

        return make_llm
    raise SwarmError(f"--proposer {config.proposer!r}: expected 'builtin', 'llm' or 'hybrid'")


@dataclass
class SwarmResult:
    swarm_id: str
    directory: Path
    noise: float
    agents: list[str]
    errors: list[str] = field(default_factory=list)
    stop_reasons: dict[str, str] = field(default_factory=dict)


def _latest_swarm(runs: Path) -> Path:
    found = sorted(runs.glob("*/swarm.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SwarmError(f"--resume: no swarm to resume under {runs}/")
    return found[-1].parent


def start_program(store: Store, task: Task, trace_id: str) -> tuple[Program, str]:
    """The program of trace ``trace_id`` (imported ones included) and its diff against the
    task's program: what ``--start-from`` shows before anything runs."""
    original = Program.read(task.root, task.editable)
    try:
        program = rebuild_for_review(store, original, trace_id)
    except LineageError as exc:
        raise SwarmError(f"--start-from {trace_id}: {exc}") from None
    return program, diff(original, program)


@dataclass
class SwarmHome:
    """Who a swarm is and where it lives: a new id and directory, or those of the swarm
    being resumed (its saved config, with the limits a resume may extend)."""

    config: SwarmConfig
    swarm_id: str
    directory: Path
    meta: dict[str, Any]
    resuming: bool

    @classmethod
    def open(cls, config: SwarmConfig, resume: str | None) -> SwarmHome:
        runs = Path(config.runs_dir)
        if resume:
            directory = _latest_swarm(runs) if resume == "latest" else runs / resume
            meta = _read_meta(directory, resume)
            home = cls(_resumed_config(meta, config), str(meta["swarm_id"]), directory, meta, True)
        else:
            swarm_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + new_id()[:6]
            home = cls(config, swarm_id, runs / swarm_id, {}, False)
        if home.config.replicates < MIN_REPLICATES:
            raise SwarmError(
                f"replicates: {home.config.replicates} is too few; the noise is the spread "
                f"of at least {MIN_REPLICATES} runs of the same program"
            )
        seed = home.config.seed
        if seed is None:  # a new swarm (a resumed one's saved config holds its seed)
            home.config = replace(home.config, seed=secrets.randbelow(SEED_LIMIT))
        elif not 0 <= seed < SEED_LIMIT:
            raise SwarmError(f"seed: {seed} is not in 0..{SEED_LIMIT - 1}")
        return home


def swarm_seed(config: SwarmConfig) -> int:
    """The swarm's sampler seed, settled by :meth:`SwarmHome.open` (agent i draws with
    ``swarm_seed * 1000 + i``)."""
    if config.seed is None:
        raise SwarmError("seed: not settled; a swarm's home (SwarmHome.open) draws it")
    return config.seed


class BoardOwner(Protocol):
    """What :func:`measure_on_board` needs of a swarm (embedded or on a cluster)."""

    store: Store
    root: Program
    config: SwarmConfig
    task: Task
    stop_event: threading.Event
    root_diff: str
    board: dict[str, AgentBoard]
    board_lock: threading.Lock
    noise: float
    baseline_id: str | None


def measure_on_board(owner: BoardOwner, seats: list[Seat]) -> Baseline:
    """Measure the noise with replicate runs on ``seats`` (:func:`agents.baseline.
    measure_noise`), showing them on the owner's board; store the noise and the baseline
    on the owner. A failure is a :class:`SwarmError`."""

    def started(name: str) -> None:
        with owner.board_lock:
            b = owner.board[name]
            b.status, b.hypothesis, b.run_started = "baseline", "baseline run", time.time()

    try:
        baseline = measure_noise(
            owner.store,
            owner.root,
            seats,
            replicates=owner.config.replicates,
            stop=owner.stop_event,
            diff=owner.root_diff,
            origin=owner.config.start_from or "",
            on_start=started,
            floor=owner.task.noise_min,
        )
    except (BaselineError, TaskRootChanged) as exc:
        raise SwarmError(str(exc)) from None
    owner.noise, owner.baseline_id = baseline.noise, baseline.baseline_id
    priors = prior_programs(owner, seats)
    if priors:
        log.info("measuring %d prior configuration(s) from memory", len(priors))
        with owner.board_lock:
            for seat in seats:
                b = owner.board[seat.name]
                b.status, b.hypothesis, b.run_started = "baseline", "prior replicates", time.time()
        try:
            measure_priors(
                owner.store,
                owner.root,
                baseline.baseline_id,
                seats,
                priors,
                replicates=owner.config.prior_replicates,
                stop=owner.stop_event,
            )
        except TaskRootChanged as exc:
            raise SwarmError(str(exc)) from None
    with owner.board_lock:
        for b in owner.board.values():
            b.status, b.run_started, b.base_metric = "idle", None, baseline.metric
    return baseline


def prior_count(config: SwarmConfig, n_seats: int) -> int:
    """How many prior configurations fill one round of ``n_seats`` at ``prior_replicates``
    runs each (at least one); 0 when the swarm runs no prior replicates."""
    if config.prior_replicates <= 0:
        return 0
    return max(1, n_seats // config.prior_replicates)


def prior_programs(
    owner: BoardOwner, seats: list[Seat]
) -> list[tuple[Program, str, dict[str, list[Any]]]]:
    """What a new swarm measures after its root, before its agents start
    (:func:`agents.baseline.measure_priors`): with the builtin (or hybrid) proposer on whole
    configurations and ``prior_replicates`` > 0, the best configurations of memory's runs
    from elsewhere (``BuiltinProposer.best_priors``), as many as fill one round of the
    seats; none without such runs."""
    config = owner.config
    if config.prior_replicates <= 0 or config.proposer not in ("builtin", "hybrid"):
        return []
    if config.moves != "whole" or not seats:
        return []
    from agents.proposers.builtin import BuiltinProposer

    author = seats[0].author
    builtin = BuiltinProposer(
        owner.task,
        owner.root,
        author.device.kind,
        author.device.hardware,
        seed=swarm_seed(config),
        budget=author.budget,
        moves=config.moves,
    )
    try:
        return builtin.best_priors(owner.store, prior_count(config, len(seats)))
    finally:
        builtin.close()


class Swarm:
    """An embedded swarm over one ``store`` (the memory owner of this process)."""

    def __init__(
        self,
        config: SwarmConfig,
        store: Store,
        *,
        resume: str | None = None,
        proposer_factory: ProposerFactory | None = None,
    ) -> None:
        self.store = store
        self.stop_event = threading.Event()
        # stop(search_only=True): the search stopped, the finals still to run (until a
        # plain stop()); guarded by _stop_lock against a second stop racing the finals
        self._search_stopped = False
        self._finals_after_stop = False
        self._finals_started = False
        self._stop_lock = threading.Lock()
        self.board: dict[str, AgentBoard] = {}
        self.board_lock = threading.Lock()
        home = SwarmHome.open(config, resume)
        self.config, self.swarm_id, self.directory = home.config, home.swarm_id, home.directory
        self.meta, self.resuming = home.meta, home.resuming
        self.task = load_task(self.config.task)
        self.devices = plan_devices(self.config.agents, self.config.devices)
        kinds = {d.kind for d in self.devices}
        kind = "cuda" if "cuda" in kinds else "cpu"
        self.budget = self.config.budget or self.task.default_budget(kind)
        if self.config.budget is None and self.config.quick_budget and kind == "cpu":
            self.budget = min(self.budget, self.config.quick_budget)
        check_short_budget(self.config, self.budget)
        self.config = resolve_retest(self.config, len(self.devices))
        check_finalists(self.config)
        warning = small_plan_warning(self.config, len(self.devices))
        if warning:
            log.warning("%s", warning)
        self.hardware = self.devices[0].hardware
        # the task root's protected files as this swarm first saw them
        self.expected: dict[str, str] = self.meta.get("protected") or protected_hashes(self.task)
        self.root_diff = ""
        if self.config.start_from:
            self.root, self.root_diff = start_program(store, self.task, self.config.start_from)
        else:
            self.root = Program.read(self.task.root, self.task.editable)
        self.space = recorded_space(self.config, self.task, self.root, kind)
        self.library = ProgramLibrary(store, self.root, self.swarm_id)
        self.names = [f"agent-{i}" for i in range(len(self.devices))]
        self.proposer_factory = proposer_factory or default_proposer_factory(self.config)
        self.noise: float = float(self.meta.get("noise", 0.0))
        self.baseline_id: str | None = self.meta.get("baseline_id")
        self.result: SwarmResult | None = None
        self._final: dict[str, dict[str, Any]] = {}  # agent -> last graph values
        self._fatal: str | None = None

    # -- events from the agents (for the live view) ---------------------------

    def on_event(self, agent: str, event: str, data: dict[str, Any]) -> None:
        with self.board_lock:
            b = self.board.get(agent)
            if b is None:
                return
            apply_event(b, event, data)

    # -- setup ------------------------------------------------------------------

    def workspace(self, name: str) -> Workspace:
        return Workspace(self.task, self.directory / "agents" / name / "work", self.expected)

    def author(self, name: str, device: Device) -> Author:
        return Author(self.task, self.swarm_id, f"{self.swarm_id}/{name}", device, self.budget)

    def bench(self, name: str, device: Device) -> Bench:
        return Bench(
            task=self.task,
            workspace=self.workspace(name),
            device=device,
            budget=self.budget,
            logs_dir=self.directory / "agents" / name / "logs",
            home=self.directory,
            expected=self.expected,
            stop=self.stop_event,
            python=self.config.python or sys.executable,
        )

    def _save_meta(self) -> None:
        self.meta.update(
            swarm_id=self.swarm_id,
            config=asdict(self.config),
            task_dir=str(self.task.root),
            budget=self.budget,
            hardware=self.hardware,
            devices=[d.name for d in self.devices],
            noise=self.noise,
            baseline_id=self.baseline_id,
            agents=self.names,
            protected=self.expected,
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / "swarm.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        tmp.replace(self.directory / "swarm.json")

    def _upsert_swarm(self, status: str) -> None:
        self.store.upsert_swarm(
            SwarmCreate(
                id=self.swarm_id,
                task=self.task.name,
                name=self.swarm_id,
                status=status,
                hardware=self.hardware,
                config={
                    **asdict(self.config),
                    "budget": self.budget,
                    "noise": self.noise,
                    "space": self.space,
                },
            )
        )

    def _set_up(self, benches: dict[str, Bench], result: SwarmResult) -> list[str]:
        """Run the task's setup step in every workspace (in parallel); the agents whose
        setup succeeded. A failure stops that agent and is recorded as a ``crash``."""
        failures: dict[str, SetupFailed] = {}

        def one(name: str) -> None:
            try:
                benches[name].ensure_setup()
            except SetupFailed as exc:
                failures[name] = exc

        threads = [threading.Thread(target=one, args=(n,), name=f"setup-{n}") for n in benches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, exc in failures.items():
            bench = benches[name]
            write_trace(
                self.store, setup_failure(self.author(name, bench.device), exc, self.directory)
            )
            result.stop_reasons[name] = str(exc)
            self.on_event(name, "stopped", {"reason": f"setup failed (log: {exc.log_path})"})
            log.error("%s: %s", name, exc)
        live = [n for n in benches if n not in failures]
        if not live:
            raise SwarmError("; ".join(f"{n}: {e}" for n, e in failures.items()))
        return live

    # -- noise --------------------------------------------------------------------

    def _seats(self, benches: dict[str, Bench], names: list[str]) -> list[Seat]:
        return [Seat(n, self.author(n, benches[n].device), benches[n]) for n in names]

    def measure_noise(self, benches: dict[str, Bench], names: list[str]) -> Baseline:
        """Replicate runs of the root program (see :mod:`agents.baseline`), stored here."""
        return measure_on_board(self, self._seats(benches, names))

    def measure_finalists(self, benches: dict[str, Bench], names: list[str]) -> int:
        """Re-measure the swarm's ``finalists`` best programs after its agents finished
        (:func:`agents.baseline.measure_finalists`), showing the runs on the board; the
        number of runs recorded."""
        seats = self._seats(benches, names)
        chosen = finalists(
            self.store,
            seats[0].author,
            self.root,  # what the baseline replicates ran
            self.config.finalists,
            self.library.for_trace,
            space=self.space if self.config.finalists_by == "model" else None,
        )
        if not chosen:
            return 0
        log.info("re-measuring %d finalist(s): %s", len(chosen), [t.id for _, t in chosen])
        with self.board_lock:
            before = {seat.name: self.board[seat.name].status for seat in seats}
            for seat in seats:
                b = self.board[seat.name]
                b.status, b.hypothesis, b.run_started = "remeasure", "finalists", time.time()
        try:
            runs = measure_finalists(self.store, seats, chosen, stop=self.stop_event)
        except TaskRootChanged as exc:
            raise SwarmError(str(exc)) from None
        finally:
            with self.board_lock:
                for name, status in before.items():
                    self.board[name].status, self.board[name].run_started = status, None
        return len(runs)

    # -- resume -------------------------------------------------------------------

    def _resume_hint(self) -> str:
        """What a resume refused for a changed task root can do instead (an upgrade of
        labswarm changes the built-in task's files): a new swarm on the same memory."""
        if not self.resuming:
            return ""
        hint = (
            f". A new swarm on this memory goes on from {self.swarm_id}'s traces (the builtin "
            "sampler takes every run of the task on the same hardware and budget as a trial)"
        )
        champion = self.store.champion(self.task.name)
        if champion is not None:
            hint += f"; `labswarm run --start-from {champion.id}` builds on memory's champion"
        return hint

    def _recover(self, graph: Any, config: dict, ctx: AgentContext) -> dict | None:
        """Input for an agent's thread: a fresh start, None to continue, or a restart."""
        snap = graph.get_state(config)
        values = snap.values or {}
        if not values:
            return {"base_id": self.baseline_id}
        if snap.next in (("run",), ("short",)) and values.get("claim_id"):
            trace_id = values.get("trace_id") or new_id()
            cut_short = snap.next == ("short",)  # the short run was in flight
            trace = ctx.author.cut_off(
                ctx.short_budget if cut_short else None,
                id=short_id(trace_id) if cut_short else trace_id,
                **candidate_fields(values, ctx.proposer),
                error="the swarm process stopped while this run was in flight (found on resume)",
            )
            write_trace(self.store, trace)
            self.store.release(values["claim_id"])
            graph.update_state(
                config,
                {
                    "claim_id": None,
                    "candidate": {},
                    "outcome": None,
                    "last_trace_id": trace.id,
                    "status": Status.interrupted.value,
                },
                as_node="record",
            )
            log.info("%s: recorded the cut-off run %s as interrupted", ctx.agent_name, trace.id)
            return None
        if not snap.next:  # finished before: go on with the (possibly extended) limits
            return {"base_id": values.get("base_id", self.baseline_id)}
        return None

    def _release_orphan_claims(self) -> None:
        for claim in self.store.active_claims(self.task.name):
            if claim.swarm_id == self.swarm_id:
                self.store.release(claim.id)
                log.info("released claim %s left by the stopped swarm", claim.id)

    # -- run ----------------------------------------------------------------------

    def _agent_main(self, graph: Any, ctx: AgentContext, result: SwarmResult) -> None:
        config = {"configurable": {"thread_id": ctx.agent_id}, "recursion_limit": RECURSION_LIMIT}
        try:
            initial = self._recover(graph, config, ctx)
            graph.invoke(initial, config, context=ctx, durability="sync")
            final = graph.get_state(config).values
            reason = end_reason(ctx, final)
            result.stop_reasons[ctx.agent_name] = reason
            ctx.emit("stopped", reason=reason)
        except Exception as exc:
            if isinstance(exc, TaskRootChanged):  # every agent would hit it: stop them all
                self._fatal = str(exc)
                self.stop_event.set()
            log.exception("%s failed", ctx.agent_name)
            result.errors.append(f"{ctx.agent_name}: {type(exc).__name__}: {exc}")
            result.stop_reasons[ctx.agent_name] = f"error: {exc}"
            try:  # a failed agent must not keep others off the program it claimed
                for claim in self.store.active_claims(self.task.name):
                    if claim.agent_id == ctx.agent_id:
                        self.store.release(claim.id)
            except Exception:
                log.exception("%s: releasing its claims failed", ctx.agent_name)
            ctx.emit("stopped", reason=f"error: {exc}")
        finally:
            try:
                self._final[ctx.agent_name] = dict(graph.get_state(config).values or {})
            except Exception:  # the last state is only for the agent's status row
                log.exception("%s: reading its last state failed", ctx.agent_name)
            try:
                ctx.proposer.close()
            except Exception:  # closing must not hide the agent's own outcome
                log.exception("%s: closing the proposer failed", ctx.agent_name)

    def _mark_stopped(self) -> None:
        """Every agent's row in memory says ``stopped`` (whatever ended the swarm)."""
        for name, device in zip(self.names, self.devices, strict=True):
            values = self._final.get(name, {})
            try:
                set_agent(
                    self.store,
                    self.author(name, device),
                    name,
                    "stopped",
                    base_id=values.get("base_id", self.baseline_id),
                    experiments=values.get("experiments", 0),
                )
            except Exception:  # a memory error here must not hide why the swarm ended
                log.exception("%s: recording its stopped status failed", name)

    def _run_agents(
        self, benches: dict[str, Bench], names: list[str], conn: Any, result: SwarmResult
    ) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        from agents.graph import compile_graph
        from agents.state import checkpoint_serde

        checkpointer = SqliteSaver(conn, serde=checkpoint_serde())
        checkpointer.setup()
        graph = compile_graph(checkpointer)
        hours = self.config.hours
        deadline = time.time() + hours * 3600 if hours else None
        threads = []
        for i, (name, device) in enumerate(zip(self.names, self.devices, strict=True)):
            if name not in names:
                continue
            seed = swarm_seed(self.config) * 1000 + i
            ctx = AgentContext(
                store=self.store,
                proposer=self.proposer_factory(self.task, self.root, device, name, seed),
                bench=benches[name],
                library=self.library,
                swarm_id=self.swarm_id,
                agent_name=name,
                noise=self.noise,
                rules=judge_rules(self.config, self.task),
                max_experiments=self.config.max_experiments,
                deadline=deadline,
                max_refusals=self.config.max_refusals,
                short_budget=self.config.short_budget,
                on_event=self.on_event,
                **recall_switches(self.config),
            )
            t = threading.Thread(
                target=self._agent_main, args=(graph, ctx, result), name=name, daemon=True
            )
            threads.append(t)
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.5)

    def run(self) -> SwarmResult:
        """Set up, measure the noise (first run only), then run every agent to its end."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, device in zip(self.names, self.devices, strict=True):
            self.board[name] = AgentBoard(name=name, device=device.name)
        benches = {n: self.bench(n, d) for n, d in zip(self.names, self.devices, strict=True)}
        if self.resuming:
            for bench in benches.values():
                bench.workspace.reap_stale_run()
        self._save_meta()
        self._upsert_swarm("running")
        if self.resuming:
            self._release_orphan_claims()
        result = SwarmResult(self.swarm_id, self.directory, self.noise, list(self.names))
        self.result = result
        conn = sqlite3.connect(self.directory / "checkpoints.sqlite", check_same_thread=False)
        status = "stopped"
        try:
            try:
                next(iter(benches.values())).check_root()
            except TaskRootChanged as exc:
                raise SwarmError(str(exc) + self._resume_hint()) from None
            names = self._set_up(benches, result)
            if self.baseline_id is None:
                self.measure_noise(benches, names)
                result.noise = self.noise
                self._save_meta()
                self._upsert_swarm("running")
            self._run_agents(benches, names, conn, result)
            if self._fatal:
                raise SwarmError(self._fatal)
            if self.config.finalists and self._finals_go_ahead():
                self.measure_finalists(benches, names)
            stopped = self.stop_event.is_set() or self._search_stopped
            status = "stopped" if stopped else "finished"
        finally:
            conn.close()
            self._mark_stopped()
            self._upsert_swarm(status)
        return result

    def stop(self, *, search_only: bool = False) -> None:
        """Ask every agent to stop; runs in flight are killed and recorded ``interrupted``.

        ``search_only`` (the CLI's first Ctrl-C): a swarm with finalists still runs its
        finals once its agents have stopped, so what it found is re-tested and judged;
        a later plain ``stop()`` ends those too. The swarm is recorded ``stopped`` either
        way (its search did not finish; a resume runs the rest, then the finals again)."""
        with self._stop_lock:
            self._search_stopped = True
            self._finals_after_stop = search_only and self.finals_pending
            self.stop_event.set()

    @property
    def finals_pending(self) -> bool:
        """True while this swarm has finalists to re-test and their runs have not begun."""
        return self.config.finalists > 0 and not self._finals_started

    def _finals_go_ahead(self) -> bool:
        """Whether the finals run now: the search ended by itself, or it was stopped by
        ``stop(search_only=True)`` and no plain stop came since (then the stop event is
        cleared for the finals' runs)."""
        with self._stop_lock:
            if self.stop_event.is_set():
                if not self._finals_after_stop or self._fatal:
                    return False
                self.stop_event.clear()
            self._finals_started = True
            return True


def _read_meta(directory: Path, resume: str) -> dict[str, Any]:
    meta_path = directory / "swarm.json"
    if not meta_path.is_file():
        raise SwarmError(f"--resume {resume}: no swarm.json in {directory}")
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    return meta


def _resumed_config(meta: dict[str, Any], asked: SwarmConfig) -> SwarmConfig:
    """The stopped swarm's config; a resume may extend its limits, and waits for a model's
    server as long as it is now asked to (how long is not part of what the swarm tried)."""
    saved = SwarmConfig(**meta["config"])
    saved.model_timeout_s = asked.model_timeout_s
    if "retest" not in meta["config"]:  # saved before the setting: its re-tests came per keep
        saved.retest = "each"
    for key in ("max_experiments", "hours"):
        if getattr(asked, key) is not None:
            setattr(saved, key, getattr(asked, key))
    return saved
