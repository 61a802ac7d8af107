"""The yardstick's arms: the real labswarm swarm and plain Optuna, on one landscape task.

Every arm gets the same total number of experiments, the same search space (the task's,
as labswarm's builtin proposer derives it: ``agents.proposers.builtin.search_space``),
the same run command with the same environment (``benchmarks/<landscape>/evaluate.py`` as
a subprocess in a private copy of the task directory), and the same noise: every arm and
seed gets its own ``LANDSCAPE_CRN_DIR`` and ``LANDSCAPE_SEED = seed``, so the same
configuration at the same repetition draws the same noise in every arm (common random
numbers, see ``landscape/evaluate.py``).

Every labswarm arm runs labswarm's defaults but for what it names, so an arm whose swarm
re-tests at its end (``SwarmConfig.retest`` "auto" resolving to "end") gives its agents
the total less the finals' runs (:func:`default_plan`); the arm-seeds recorded before
2026-12-03 ran the per-keep default (``benchmarks/results/raw.commands`` names the code
that ran each).

- ``labswarm-shared``: N agents, one memory, labswarm's defaults: whole-configuration
  moves, and (``SwarmConfig.retest`` "auto", which resolves to "end" here) no re-test
  during the search, the N // 2 best programs by a Gaussian process's predicted mean
  re-measured twice each after it; each agent gets one experiment fewer so that the
  finals fit the same total (:func:`default_plan`). Before 2026-12-03 the default
  confirmed and re-measured each keep as it happened (``retest="each"``).
- ``labswarm-neighbour``: the same with ``SwarmConfig(moves="neighbour")``: each proposal
  changes one knob of the agent's base (the previous release's default).
- ``labswarm-transfer``: ``labswarm-shared`` whose memory first imports a seed pack
  exported from an earlier labswarm swarm on the same landscape at ``PRIOR_BUDGET`` seconds
  per run (half the experiments, other seeds): its runs are priors of the start-up phase,
  never trials, and its best configurations are run twice each before the agents start
  (prior replicates: experiments here, counted like any other). Only the new swarm's runs
  count. The earlier swarm's 1.5 s runs are scored by the surrogate of real 1.5 s runs
  (``landscape/surrogate-1.5s.json``), so its ranking of configurations is the short
  runs' own, not the 3 s landscape's.
- ``labswarm-multifidelity``: ``labswarm-shared`` with ``SwarmConfig(short_budget=
  SHORT_BUDGET)``: each new configuration runs at 1.5 s first and at the task's 3 s only
  when its short run ranks among the best third of the short runs (``agents.judge.
  judge_short``). The landscape scores a 1.5 s run with a surrogate fitted to real 1.5 s
  runs (``landscape/surrogate-1.5s.json``). A short run is one experiment. The swarm
  re-tests at its end (``--retest auto``, since 2026-12-03 also with a short budget) and is
  planned to spend at most the others' device-seconds, its finals included
  (:func:`multifidelity_plan`: 8 agents x 12 where the others run 80 experiments); the
  report compares it at equal device-seconds as well as at equal experiments. Before, it
  re-tested each keep and got ``MULTIFIDELITY_EXPERIMENTS`` times the others' experiments.
- ``labswarm-isolated``: N one-agent swarms, each its own memory.
- ``labswarm-single``: one agent doing every experiment.
- ``labswarm-no-recall``: N agents, one memory, ``SwarmConfig(recall=False)`` (each agent
  recalls and learns only from its own traces; claims and the duplicate refusal stay
  shared).
- ``labswarm-no-confirm``: N agents, one memory, ``SwarmConfig(confirm=False,
  remeasure=0)``: a keep is judged on one run (the same 5 % test) and never re-run, so no
  program gathers the two kept runs a champion needs -- the agents only climb their own
  lineages.
- ``labswarm-one-run-keep``: N agents, one memory, ``SwarmConfig(confirm=False)``: a keep
  is judged on its one run (the same 5 % test, ``margin(1)``), with no confirmation run;
  a contender is still re-measured twice (``remeasure`` at its default), so the champion
  rule is the shipped one. It asks what the confirmation run costs and buys once the
  champion needs unselected runs of its own.
- ``labswarm-finalists``: N agents, one memory, ``SwarmConfig(confirm=False, remeasure=0,
  finalists=N // 2, finalists_by="model")`` with one experiment fewer per agent: no
  re-test during the search (every experiment a new configuration, but for the re-run of a
  metric out of the plausible range; a suspect big step is left to the finalists), then
  the swarm's N // 2 best programs by the mean a Gaussian process over their knob values
  predicts (``agents.surrogate``) re-measured twice each after the agents finish
  (``agents.baseline.measure_finalists``): the same total of experiments, its re-tests
  all at the end.
- one arm per ablation switch of the swarm (:data:`ABLATIONS`), each ``labswarm-shared``
  with exactly that one switch off: ``labswarm-no-semantic-recall``
  (``semantic_recall=False``: recall without the search by meaning),
  ``labswarm-no-near-dup`` (``refuse_near_duplicates=False``: drafts near in meaning to a
  recorded run are not refused), ``labswarm-no-insights`` (``insights=False``: no
  insights distilled from memory reach the proposer), ``labswarm-no-champion-following``
  (``follow_champion=False``: an agent stays on its own lineage instead of moving onto
  the swarm's champion).
- ``optuna-shared``: one Optuna study in a journal file shared by N worker threads, each
  with its own ``load_study`` and the builtin's sampler
  (``agents.proposers.builtin.tpe_sampler``: ``TPESampler(constant_liar=True,
  multivariate=True)``, the same ``n_startup_trials``); nothing of labswarm runs.
- ``optuna-sequential``: the same with one worker.
- ``random``: the same N workers with ``RandomSampler``.

Each arm-and-seed becomes an :class:`ArmSeed`: its runs in the order they ended, each with
its configuration, observed metric and true (noise-free) value read from the run's log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.program import Program
from agents.proposers.builtin import search_space as builtin_space
from agents.proposers.builtin import tpe_sampler
from agents.swarm import Swarm, SwarmConfig, finals_runs, prior_count, resolve_retest
from agents.task import Task, load_task
from memory import get_store
from memory.base import Store
from memory.models import (
    RAN_STATUSES,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
)
from memory.packs import export_pack, import_pack

log = logging.getLogger(__name__)

# One arm per ablation switch of the swarm: labswarm-shared with exactly that switch off
# (the SwarmConfig field each one sets to False).
ABLATIONS: dict[str, str] = {
    "labswarm-no-semantic-recall": "semantic_recall",
    "labswarm-no-near-dup": "refuse_near_duplicates",
    "labswarm-no-insights": "insights",
    "labswarm-no-champion-following": "follow_champion",
}
LABSWARM_ARMS = (
    "labswarm-shared",
    "labswarm-neighbour",
    "labswarm-transfer",
    "labswarm-multifidelity",
    "labswarm-isolated",
    "labswarm-single",
    "labswarm-no-recall",
    "labswarm-no-confirm",
    "labswarm-one-run-keep",
    "labswarm-finalists",
    *ABLATIONS,
)
# the arms whose N agents share one memory (one swarm)
SHARED_MEMORY_ARMS = (
    "labswarm-shared",
    "labswarm-neighbour",
    "labswarm-transfer",
    "labswarm-multifidelity",
    "labswarm-no-recall",
    "labswarm-no-confirm",
    "labswarm-one-run-keep",
    "labswarm-finalists",
    *ABLATIONS,
)
OPTUNA_ARMS = ("optuna-shared", "optuna-sequential", "random")
ARMS = LABSWARM_ARMS + OPTUNA_ARMS
PRIOR_BUDGET = 1.5  # seconds per run of the transfer arm's earlier swarm (the task's: 3)
PRIOR_SEED = 10_000  # + the seed: the landscape seed of that earlier swarm
SHORT_BUDGET = 1.5  # seconds of a short run in the multi-fidelity arm (the task's: 3)
# the multi-fidelity arm's experiments, as a multiple of the others', when its swarm
# re-tests each keep: a short run costs half a full one, so twice the experiments spend at
# least the others' device-seconds
MULTIFIDELITY_EXPERIMENTS = 2
# the device-seconds one search experiment of the multi-fidelity arm costs at most, to plan
# a swarm that re-tests at its end within the others' device-seconds: 60 arm-seeds of 8
# agents x 14 (smooth and crash, 2026-12-03, dropped/multifidelity-end-retests.jsonl.gz)
# spent 1.83-2.11 per search experiment (median 1.98; short runs, promoted full runs and
# re-runs of metrics out of range), so 2.25 leaves room for the dearest seed
MULTIFIDELITY_DEVICE_S = 2.25
LANDSCAPE_BUDGET = 3.0  # the landscape task's seconds per run (task.toml's [budget])

CONFIG_PREFIX = "landscape config: "
TRUE_RE = re.compile(r"^landscape: surrogate mean ([-+0-9.eE]+)", re.MULTILINE)
METRIC_RE = re.compile(r"^val_bpb: ([-+0-9.eEnaif]+)\s*$", re.MULTILINE)


@dataclass
class Run:
    """One evaluation of the landscape: an experiment or a baseline replicate."""

    id: str
    worker: str
    config: dict[str, float] | None
    ok: bool  # finished with a metric (else crashed or timed out)
    observed: float | None  # the metric the run printed (noise included)
    true: float | None  # the surrogate mean the run printed (noise-free)
    started: float  # epoch seconds
    ended: float
    duration: float
    baseline: bool = False
    candidate: bool = False  # could be handed to the user (a keep; an Optuna COMPLETE)
    kept: bool | None = None  # labswarm's judge: keep (True) or discard (False)
    base_id: str | None = None  # the program it changed (labswarm)
    retest: bool = False  # a confirmation or re-measure run of a program (labswarm)
    remeasure: bool = False  # a re-measure run: no verdict chose it (labswarm)
    replicate: bool = False  # a prior's replicate, run before the agents: no verdict chose it
    recorded: float | None = None  # when memory recorded it (labswarm; epoch seconds)
    # the run's budget in seconds, what it cost a device (None: the task's, as every run had
    # before short runs existed)
    budget: float | None = None
    short: bool = False  # a short run (multi-fidelity): never handed over, never measured
    promoted: bool = False  # a full run promoted from a short run of its configuration

    @property
    def unselected(self) -> bool:
        """A run no verdict chose (``memory.models.UNSELECTED_ROLES``): a baseline
        replicate (of the root or of a prior) or a re-measure -- what memory's champion
        rule counts."""
        return self.baseline or self.remeasure or self.replicate


@dataclass
class ArmSeed:
    """One arm at one seed on one landscape: its runs in the order they ended."""

    arm: str
    landscape: str
    seed: int
    runs: list[Run]
    wall_s: float
    start_true: float  # the true value of the task's unmodified configuration
    errors: list[str] = field(default_factory=list)
    champion_id: str | None = None  # what memory calls the champion (labswarm arms)
    budget: float = LANDSCAPE_BUDGET  # the task's seconds per run (a run without its own)

    def seconds(self, run: Run) -> float:
        """The device-seconds ``run`` was given."""
        return run.budget if run.budget is not None else self.budget

    @property
    def experiments(self) -> list[Run]:
        return [r for r in self.runs if not r.baseline]


def search_space(task: Task) -> dict[str, Any]:
    """The task's search space as labswarm's builtin proposer builds it on a CPU."""
    return builtin_space(task, Program.read(task.root, task.editable), "cpu")


def round_value(value: Any) -> Any:
    """A sampled value as it is written into knobs.py: floats to 3 significant digits
    (as the builtin proposer rounds its proposals), everything else unchanged."""
    if isinstance(value, float):
        return 0.0 if value == 0 else float(f"{value:.3g}")
    return value


def parse_log(text: str) -> tuple[dict[str, float] | None, float | None, float | None]:
    """Configuration, true value and observed metric printed by the landscape evaluator."""
    import json

    config = None
    for line in text.splitlines():
        if line.startswith(CONFIG_PREFIX):
            try:
                config = json.loads(line[len(CONFIG_PREFIX) :])
            except json.JSONDecodeError:
                config = None
    m_true = TRUE_RE.search(text)
    tail = text.split("\n---\n")[-1] if "\n---\n" in text else ""
    m_obs = METRIC_RE.search(tail)
    true = float(m_true.group(1)) if m_true else None
    obs = float(m_obs.group(1)) if m_obs else None
    return config, true, obs


def prepare_task(task_dir: Path, root: Path, seed: int) -> Path:
    """A copy of the landscape task for one arm and seed whose ``[env]`` carries the noise
    variables (``LANDSCAPE_SEED``, ``LANDSCAPE_CRN_DIR``).

    The task's ``[env]`` is how a run gets variables: labswarm builds a run's environment
    from an allow-list plus the task's ``[env]``, so this is the one channel that reaches
    labswarm's runs and the Optuna workers' runs alike.
    """
    import tomllib

    task = root / "task"
    crn = root / "crn"
    crn.mkdir(parents=True, exist_ok=True)
    shutil.copytree(task_dir, task, ignore=shutil.ignore_patterns("__pycache__", ".landscape_*"))
    toml = task / "task.toml"
    text = toml.read_text(encoding="utf-8")
    tables = re.findall(r"^\[([^\]]+)\]\s*$", text, flags=re.MULTILINE)
    if not tables or tables[-1] != "env":
        raise ValueError(f"{task_dir / 'task.toml'}: [env] must be the last table")
    text = text.rstrip("\n") + f'\nLANDSCAPE_SEED = "{seed}"\nLANDSCAPE_CRN_DIR = "{crn}"\n'
    tomllib.loads(text)  # still valid TOML
    toml.write_text(text, encoding="utf-8")
    return task


# -- labswarm arms ---------------------------------------------------------------------


def _all_traces(store: Store, task: str, swarm_id: str) -> list[ExperimentPublic]:
    out: list[ExperimentPublic] = []
    while True:
        page = store.query_traces(
            TraceQuery(task=task, swarm_id=swarm_id, sort="created_at", limit=1000, offset=len(out))
        )
        out.extend(page.data)
        if len(page.data) < 1000:
            return out


def _trace_run(t: ExperimentPublic) -> Run:
    config, true, _ = parse_log(t.log_tail or "")
    started = t.started_at.timestamp() if t.started_at else t.created_at.timestamp()
    ended = (t.finished_at or t.created_at).timestamp()
    ok = t.status in (Status.keep, Status.discard) and t.metric is not None
    return Run(
        id=t.id,
        worker=t.agent_id or "",
        config=config,
        ok=ok,
        observed=t.metric if ok else None,
        true=true if ok else None,
        started=started,
        ended=ended,
        duration=t.duration_s or 0.0,
        # the root's replicates (no parent); a prior's replicates are experiments
        baseline=t.role == Role.baseline and t.parent_id is None,
        # memory's champion rule counts trusted kept runs: baseline replicates,
        # experiments, confirmations and re-measures (measures._Picker groups them); a short
        # run's keep is its promotion, at another budget
        candidate=ok
        and t.status == Status.keep
        and t.role not in (Role.seed, Role.short)
        and not t.source,
        kept=(t.status == Status.keep) if ok and t.role == Role.experiment else None,
        base_id=t.parent_id,
        retest=t.role in (Role.confirmation, Role.remeasure),
        remeasure=t.role == Role.remeasure,
        replicate=t.role == Role.baseline and t.parent_id is not None,
        recorded=t.created_at.timestamp(),
        budget=t.budget_s,
        short=t.role == Role.short,
        promoted=bool(t.short_id),
    )


def _swarm(
    task_dir: Path,
    store: Store,
    runs_dir: Path,
    agents: int,
    per_agent: int,
    seed: int,
    options: dict[str, Any],
) -> tuple[list[ExperimentPublic], list[str], str | None]:
    """One embedded swarm (``options``: its ablation switches); its ran traces, errors,
    and memory's champion id."""
    config = SwarmConfig(
        task=str(task_dir),
        agents=agents,
        devices="cpu:1",
        max_experiments=per_agent,
        seed=seed,
        runs_dir=str(runs_dir),
        python=sys.executable,
        max_refusals=16,
        **options,
    )
    swarm = Swarm(config, store)
    result = swarm.run()
    traces = _all_traces(store, swarm.task.name, swarm.swarm_id)
    champion = store.champion(swarm.task.name)
    return traces, list(result.errors), champion.id if champion else None


def _prior_pack(
    task_dir: Path, root: Path, agents: int, experiments: int, seed: int, embedder: str | None
) -> Path:
    """A pack exported from an earlier labswarm swarm on the landscape ``task_dir`` at
    ``PRIOR_BUDGET`` seconds per run (the transfer arm's seed pack). The earlier swarm has
    its own landscape seed and repetition counter: its noise is its own, and the arm's own
    runs draw what every other arm draws."""
    prior = root / "prior"
    task = prepare_task(task_dir, prior, PRIOR_SEED + seed)
    pack = root / "prior-pack.jsonl"
    store = get_store(prior / "memory", embedder=embedder)
    try:
        options = {"budget": PRIOR_BUDGET}
        _swarm(task, store, prior / "runs", agents, experiments // agents, seed, options)
        export_pack(store, pack, name="prior", query=TraceQuery(task=load_task(task).name))
    finally:
        store.close()
    return pack


def _interleave(groups: list[list[Run]]) -> list[Run]:
    """Experiments of separate swarms as if run side by side: each swarm's i-th, then
    the (i+1)-th...; baselines first."""
    base = [r for g in groups for r in g if r.baseline]
    exps = [[r for r in g if not r.baseline] for g in groups]
    out = sorted(base, key=lambda r: r.ended)
    for i in range(max((len(e) for e in exps), default=0)):
        out.extend(e[i] for e in exps if i < len(e))
    return out


def default_plan(
    n_agents: int, total: int, options: dict[str, Any], *, priors: bool = False
) -> tuple[int, int, dict[str, Any]]:
    """One swarm of ``n_agents`` with ``options`` over ``total`` experiments: (agents,
    experiments each, options). Its re-test plan is resolved as the swarm resolves it
    (``agents.swarm.resolve_retest``); a swarm that re-tests at its end runs its finals
    after the agents' ``max_experiments``, so their runs come out of the agents' share --
    unless that would leave an agent no experiment, when the swarm re-tests each keep.
    ``priors``: memory holds runs from elsewhere, so the swarm first runs its prior
    replicates (``prior_replicates`` runs of each of ``n_agents // prior_replicates``
    priors, at least one: one round, ``agents.swarm``), which come out of the share too."""
    config = resolve_retest(SwarmConfig(max_experiments=1, **options), n_agents)
    finals = finals_runs(config)
    first = prior_count(config, n_agents) * config.prior_replicates if priors else 0
    each = (total - finals - first) // n_agents
    if each < 1:
        return (n_agents, total // n_agents, {**options, "retest": "each"})
    return (n_agents, each, options)


def multifidelity_plan(n_agents: int, total: int) -> tuple[int, int, dict[str, Any]]:
    """The multi-fidelity arm's swarm, planned to spend at most the device-seconds of
    ``total`` full runs: (agents, experiments each, options). Resolved as the swarm resolves
    it, it re-tests at its end, so its finals' full runs come out of those device-seconds
    and each agent gets what is left at ``MULTIFIDELITY_DEVICE_S`` per experiment (8 agents,
    80 runs' worth: 12 each). Where that leaves an agent no experiment it re-tests each keep
    with ``MULTIFIDELITY_EXPERIMENTS`` times the others' experiments, as before 2026-12-03."""
    options: dict[str, Any] = {"short_budget": SHORT_BUDGET}
    config = resolve_retest(SwarmConfig(max_experiments=1, **options), n_agents)
    device_s = (total - finals_runs(config)) * LANDSCAPE_BUDGET
    each = int(device_s // (n_agents * MULTIFIDELITY_DEVICE_S))
    if config.retest == "end" and each >= 1:
        return (n_agents, each, options)
    more = (total // n_agents) * MULTIFIDELITY_EXPERIMENTS
    return (n_agents, more, {**options, "retest": "each"})


def swarm_plans(arm: str, n_agents: int, total: int) -> list[tuple[int, int, dict[str, Any]]]:
    """The swarms a labswarm arm runs, one after another: (agents, experiments each, the
    ``SwarmConfig`` options that differ from the defaults)."""
    each = total // n_agents
    by_arm: dict[str, list[tuple[int, int, dict[str, Any]]]] = {
        "labswarm-shared": [default_plan(n_agents, total, {})],
        "labswarm-neighbour": [default_plan(n_agents, total, {"moves": "neighbour"})],
        "labswarm-transfer": [default_plan(n_agents, total, {}, priors=True)],
        "labswarm-multifidelity": [multifidelity_plan(n_agents, total)],
        "labswarm-no-recall": [default_plan(n_agents, total, {"recall": False})],
        "labswarm-no-confirm": [default_plan(n_agents, total, {"confirm": False, "remeasure": 0})],
        "labswarm-one-run-keep": [default_plan(n_agents, total, {"confirm": False})],
        # N // 2 finalists x 2 re-measures = N runs (N - 1 when N is odd): one round
        "labswarm-finalists": [
            default_plan(
                n_agents,
                total,
                {
                    "confirm": False,
                    "remeasure": 0,
                    "finalists": max(n_agents // 2, 1),
                    "finalists_by": "model",
                },
            )
        ],
        "labswarm-single": [default_plan(1, total, {})],
        "labswarm-isolated": [default_plan(1, each, {})] * n_agents,
    }
    for ablation, switch in ABLATIONS.items():  # one switch off, nothing else changed
        by_arm[ablation] = [default_plan(n_agents, total, {switch: False})]
    return by_arm[arm]


def run_labswarm(
    arm: str,
    landscape: str,
    task_dir: Path,
    seed: int,
    n_agents: int,
    total: int,
    work: Path,
    start_true: float,
    embedder: str | None,
    pack_experiments: int | None = None,
) -> ArmSeed:
    """A labswarm arm at ``seed``: the real swarm(s), builtin proposer, embedded memory.
    ``pack_experiments``: the transfer arm's earlier swarm's total (None: half of
    ``total``)."""
    root = work / f"{landscape}-{arm}-s{seed}"
    task = prepare_task(task_dir, root, seed)
    plans = swarm_plans(arm, n_agents, total)
    # The runs of one arm and seed share a repetition counter outside their workspaces
    # (common random numbers); labswarm's sandbox makes everything but the workspace
    # read-only, so the labswarm arms run unsandboxed, like the Optuna arms' runs.
    env = {"LABSWARM_SANDBOX": "off"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    groups: list[list[Run]] = []
    errors: list[str] = []
    champions: list[str | None] = []
    try:
        pack = None
        if arm == "labswarm-transfer":
            earlier = pack_experiments or total // 2
            pack = _prior_pack(task_dir, root, n_agents, earlier, seed, embedder)
        for j, (agents, per_agent, options) in enumerate(plans):
            store = get_store(root / f"memory-{j}", embedder=embedder)
            try:
                if pack is not None:
                    import_pack(store, pack)
                traces, errs, champ = _swarm(
                    task, store, root / f"runs-{j}", agents, per_agent, seed * 100 + j, options
                )
            finally:
                store.close()
            ran = [t for t in traces if t.status in RAN_STATUSES]
            groups.append(sorted((_trace_run(t) for t in ran), key=lambda r: r.ended))
            errors.extend(errs)
            champions.append(champ)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.perf_counter() - t0
    runs = _interleave(groups) if len(groups) > 1 else groups[0]
    champion = champions[0] if len(champions) == 1 else None
    return ArmSeed(arm, landscape, seed, runs, wall, start_true, errors, champion)


# -- Optuna arms -----------------------------------------------------------------------

_ASSIGN = r"^({name}\s*=\s*)([^#\n]*?)(\s*#.*)?$"


def write_knobs(workspace: Path, editable: str, values: dict[str, Any]) -> None:
    """Set the knobs' values in the workspace's editable file (one line each)."""
    path = workspace / editable
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        pattern = re.compile(_ASSIGN.format(name=re.escape(name)), re.MULTILINE)

        def assign(m: re.Match[str], v: Any = value) -> str:
            return f"{m.group(1)}{v!r}{m.group(3) or ''}"

        text, n = pattern.subn(assign, text)
        if n != 1:
            raise ValueError(f"{editable}: {name} is assigned {n} times, expected once")
    path.write_text(text, encoding="utf-8")


def run_env(task: Task) -> dict[str, str]:
    """The variables labswarm gives a CPU run of ``task`` (agents/runner.py), the task's
    ``[env]`` (with the landscape's noise variables) included: what the evaluator reads is
    the same in every arm."""
    budget = f"{task.default_budget('cpu'):g}"
    env = dict(os.environ)
    env.update(task.env)
    env.update(
        {
            task.budget_env: budget,
            "LABSWARM_TIME_BUDGET": budget,
            "LABSWARM_DEVICE": "cpu",
            "CUDA_VISIBLE_DEVICES": "",
            "LABSWARM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def evaluate_in(task: Task, workspace: Path, env: dict[str, str]) -> tuple[str, float, float]:
    """Run the task's command in ``workspace``; its output, start time and duration."""
    argv = task.argv(sys.executable)
    started = time.time()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=task.hard_timeout(task.default_budget("cpu")),
        )
        out = proc.stdout if proc.returncode == 0 else f"{proc.stdout}\nexit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = str(exc.stdout or "") + "\ntimeout"
    return out, started, time.perf_counter() - t0


def run_optuna(
    arm: str,
    landscape: str,
    task_dir: Path,
    seed: int,
    n_workers: int,
    total: int,
    work: Path,
    start_true: float,
) -> ArmSeed:
    """An Optuna arm: ``n_workers`` threads, each its own ``load_study`` on one journal
    file, asking, running the evaluator, telling, until ``total`` trials were asked."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if arm == "optuna-sequential":
        n_workers = 1
    root = work / f"{landscape}-{arm}-s{seed}"
    task = load_task(prepare_task(task_dir, root, seed))
    space = search_space(task)
    env = run_env(task)
    journal = str(root / "study.journal")
    study_name = f"{landscape}-{arm}-s{seed}"
    optuna.create_study(
        study_name=study_name,
        storage=JournalStorage(JournalFileBackend(journal)),
        direction=task.direction,
    )
    lock = threading.Lock()
    asked = 0
    runs: list[Run] = []
    errors: list[str] = []

    def worker(i: int) -> None:
        nonlocal asked
        workspace = root / f"worker-{i}"
        shutil.copytree(task.root, workspace, ignore=shutil.ignore_patterns("__pycache__"))
        sampler: optuna.samplers.BaseSampler = (
            optuna.samplers.RandomSampler(seed=seed * 100 + i)
            if arm == "random"
            else tpe_sampler(seed * 100 + i)  # the builtin's settings
        )
        study = optuna.load_study(
            study_name=study_name,
            storage=JournalStorage(JournalFileBackend(journal)),
            sampler=sampler,
        )
        while True:
            with lock:
                if asked >= total:
                    return
                asked += 1
            trial = study.ask(space)
            trial.set_user_attr("worker", i)
            values = {n: round_value(v) for n, v in trial.params.items()}
            write_knobs(workspace, task.editable[0], values)
            out, started, duration = evaluate_in(task, workspace, env)
            config, true, observed = parse_log(out)
            ok = observed is not None and true is not None
            if ok:
                study.tell(trial, observed)
            else:
                study.tell(trial, state=TrialState.FAIL)
            run = Run(
                id=f"{study_name}-{trial.number}",
                worker=f"worker-{i}",
                config=config,
                ok=ok,
                observed=observed,
                true=true,
                started=started,
                ended=started + duration,
                duration=duration,
                candidate=ok,
            )
            with lock:
                runs.append(run)

    def guarded(i: int) -> None:
        try:
            worker(i)
        except Exception as exc:  # a worker's failure is reported, not hidden
            log.exception("%s worker %d", study_name, i)
            with lock:
                errors.append(f"worker-{i}: {type(exc).__name__}: {exc}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    runs.sort(key=lambda r: r.ended)
    return ArmSeed(arm, landscape, seed, runs, wall, start_true, errors)


def journal_workers(journal: Path) -> dict[str, set[int]]:
    """Per study in an Optuna arm's journal file, the workers whose trials it holds."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    out: dict[str, set[int]] = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out[summary.study_name] = {int(t.user_attrs["worker"]) for t in study.trials}
    return out


def run_arm(
    arm: str,
    landscape: str,
    task_dir: Path,
    seed: int,
    n_workers: int,
    total: int,
    work: Path,
    start_true: float,
    embedder: str | None = None,
    pack_experiments: int | None = None,
) -> ArmSeed:
    """Run ``arm`` at ``seed`` with ``total`` experiments in all (the transfer arm's pack
    from an earlier swarm of ``pack_experiments``, None: half of ``total``)."""
    if arm in LABSWARM_ARMS:
        return run_labswarm(
            arm,
            landscape,
            task_dir,
            seed,
            n_workers,
            total,
            work,
            start_true,
            embedder,
            pack_experiments,
        )
    if arm in OPTUNA_ARMS:
        return run_optuna(arm, landscape, task_dir, seed, n_workers, total, work, start_true)
    raise ValueError(f"arm {arm!r}: expected one of {', '.join(ARMS)}")
