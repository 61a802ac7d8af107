"""The builtin proposer: Optuna's TPE over the task's knobs, no LLM.

- **Sampler**: ``TPESampler(multivariate=True, constant_liar=True)``: one Parzen estimator
  over the whole configuration (what Optuna 5 does by default for one objective), so knobs
  that work together, such as a learning rate and a batch size, are modelled together.
- **Space** (fixed per task): a knob declared in ``task.toml``'s ``[space.NAME]`` takes
  that range or those choices (:func:`search_space`); any other knob gets the default box
  centred on the task's original value: floats on a log scale from value/4 to value*4
  (values in (0, 1) capped below 1; 0.0 -> uniform [0, 0.25]); ints that are powers of
  two -> choices value/4 .. value*4 by doubling; other ints -> steps from value/2 to
  value*2; bools -> both; strings -> the choices their line's comment lists. On a CPU
  device knobs ending in ``_CUDA`` are left out, on a GPU those ending in ``_CPU``.
- **Warm start**: every trace of this task in memory becomes a trial (its knob values
  rebuilt along its lineage): keep/discard with their metric; a confirmation is one more
  trial of its program. Traces from another hardware class or at another budget (seconds
  per run) are left out: their values measure something else. The root's replicates
  are not trials either: no sampler chose them, and as trials they put one observation
  per replicate (per swarm, as swarms accumulate) on one point of the space and count
  toward TPE's random start-up (three replicates left it two random proposals of five).
  Measured on the yardstick (docs/benchmarks.md): the finalists arm did better on the
  crash landscape in two runs (p = 0.055 together), the default arm no different. A
  prior's replicates, run before the agents like the root's, stay trials: a prior is a
  configuration chosen from evidence, like a proposal.
- **Failures constrain the search**: a crash or a timeout is a trial with a penalised
  value (the worst metric of the study's finished trials at the time it is added), so
  TPE counts its region among the bad ones and samples there less; before any trial has
  a metric it is a failed trial (which TPE ignores).
- **Priors from elsewhere**: judged runs of the task on other hardware classes or at other
  budgets, and imported runs (seed packs, other installations), are never trials (their
  values measure something else, or were not measured here). Their weight: during TPE's
  start-up phase -- until ``n_startup_trials`` programs besides the root have finished
  here, when TPE would otherwise sample at random -- each whole-configuration proposal is
  the best such configuration not yet run here (ranked within its own source by the mean
  of its runs there, the best of every source first); after that they are not used. Before
  the agents start, a swarm runs the best of them twice each
  (:meth:`BuiltinProposer.best_priors`, ``agents.baseline.measure_priors``): runs of this
  swarm, no longer priors.
- **Short runs** (a swarm with a short budget, multi-fidelity): a program not promoted
  from its short run is a pruned trial at the short run's metric (ranked below every
  finished trial, as Optuna's TPE does with its pruners' trials) and is never proposed
  again; a short run that crashed is a failure's penalised trial, never proposed again
  either (a timed-out one may be, as memory's ``Store.seen`` allows); a promoted one
  waits for its full run, the trial. Short runs at any budget other than this swarm's
  full one count, so a program an earlier swarm screened out at another short budget is
  not proposed again: stricter than memory's refusal, which counts the swarm's own
  short budget only.
- **Pending trials**: every active claim is a running trial, so TPE's constant liar
  steers parallel agents apart.
- **Moves** (``moves``): ``whole`` (the default) samples a value for every knob at once
  -- the whole configuration -- and applies it to the agent's base program (the
  champion's code), so the swarm's memory is one TPE study over the full space;
  ``neighbour`` changes one knob of the base (two or three after repeated duplicates),
  the rest fixed (``PartialFixedSampler``), a local search around the champion.
- **Never a seen program**: a candidate that memory would refuse as already run (a
  keep/discard/crash on this hardware class: ``Store.seen``) or that a claim holds is
  dropped (a failed trial) and another is sampled; a timeout may be tried again.
- **Edits** rewrite only the changed constants' lines.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from statistics import fmean
from typing import Any

from agents.knobs import Knob, KnobValue, discover_knobs, format_value, kind_of, set_knobs
from agents.program import Edit, Program
from agents.proposers.base import Proposal, ProposalRequest, Proposer, SearchExhausted
from agents.task import TASK_FILE, SpaceSpec, Task, TaskError
from memory.base import Store
from memory.models import (
    MAX_PAGE,
    RAN_STATUSES,
    SEEN_ROLES,
    SEEN_STATUSES,
    SHORT_SEEN_STATUSES,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
    run_here,
)

log = logging.getLogger(__name__)

MOVES = ("whole", "neighbour")
N_STARTUP_TRIALS = 5  # programs besides the root before TPE stops sampling at random
SYNC_OVERLAP = timedelta(seconds=30)  # re-read this much history to catch late commits


def tpe_sampler(seed: int | None, n_startup_trials: int = N_STARTUP_TRIALS) -> Any:
    """The builtin's sampler: multivariate TPE (Optuna 5's default for one objective, said
    here so that a change of that default cannot change the search unseen) with the
    constant liar, so a running trial steers the next ask away. The yardstick's
    ``optuna-shared`` arm samples with this too."""
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=n_startup_trials, constant_liar=True, multivariate=True
    )


def _is_pow2(v: int) -> bool:
    return v >= 2 and (v & (v - 1)) == 0


def distribution_for(knob: Knob) -> Any | None:
    """The Optuna distribution of one knob, or None if it is not tunable."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    v = knob.value
    if knob.kind == "bool":
        return CategoricalDistribution([False, True])
    if knob.kind == "str":
        return CategoricalDistribution(list(knob.choices)) if knob.choices else None
    if knob.kind == "int":
        assert isinstance(v, int)
        if _is_pow2(v):
            return CategoricalDistribution([c for c in (v // 4, v // 2, v, v * 2, v * 4) if c >= 1])
        if v == 0:
            return IntDistribution(0, 4)
        if v < 0:
            return None
        step = max(1, 10 ** (len(str(v)) - 2))
        low, high = max(1, v // 2), v * 2
        low = max(step, low - low % step)
        high -= (high - low) % step
        return IntDistribution(low, high, step=step) if high > low else None
    assert isinstance(v, float)
    if v == 0.0:
        return FloatDistribution(0.0, 0.25)
    if v < 0:
        return FloatDistribution(v * 4, v / 4)
    top = v * 4 if v >= 1 else min(v * 4, 1 - (1 - v) / 4)
    return FloatDistribution(v / 4, top, log=True)


def declared_distribution(knob: Knob, spec: SpaceSpec) -> Any:
    """The Optuna distribution a ``[space.NAME]`` table declares for ``knob``; a
    ``ValueError`` saying which field does not fit the knob's kind."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if spec.choices is not None:
        wrong = [c for c in spec.choices if kind_of(c) != knob.kind]
        if wrong:
            raise ValueError(f"choices: {wrong[0]!r} is not a {knob.kind} like {knob.value!r}")
        return CategoricalDistribution(list(spec.choices))
    assert spec.low is not None and spec.high is not None  # SpaceSpec checked
    if knob.kind == "int":
        for field, v in (("low", spec.low), ("high", spec.high), ("step", spec.step)):
            if v is not None and not isinstance(v, int):
                raise ValueError(f"{field}: the knob is an int, got {v!r}")
        return IntDistribution(
            int(spec.low), int(spec.high), log=spec.log, step=int(spec.step or 1)
        )
    if knob.kind == "float":
        low, high = float(spec.low), float(spec.high)
        step = float(spec.step) if spec.step is not None else None
        return FloatDistribution(low, high, log=spec.log, step=step)
    raise ValueError(f"low: a {knob.kind} knob takes choices, not a range")


def search_space(task: Task, root: Program, device_kind: str) -> dict[str, Any]:
    """``{knob name: Optuna distribution}``: what the builtin proposer searches on this kind
    of device -- the declared ``[space.NAME]`` ranges, the default box for the other
    tunable knobs. A declaration that names no knob of the editable files, or that does
    not fit its knob, is a :class:`TaskError` naming the file and the knob."""
    where = task.root / TASK_FILE
    found = {k.name: k for k in discover_knobs(root, task.knobs)}
    for name in task.space:
        if name not in found:
            files = ", ".join(task.editable)
            raise TaskError(f"{where}: field 'space.{name}': not a knob of {files}")
    space: dict[str, Any] = {}
    for knob in tunable_knobs(task, root, device_kind):
        spec = task.space.get(knob.name)
        if spec is None:
            space[knob.name] = distribution_for(knob)
            continue
        try:
            space[knob.name] = declared_distribution(knob, spec)
        except ValueError as exc:
            field, _, why = str(exc).partition(": ")
            raise TaskError(f"{where}: field 'space.{knob.name}.{field}': {why}") from None
    return space


def describe_space(space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A search space as plain JSON (recorded with the swarm: a change of space shows)."""
    from optuna.distributions import CategoricalDistribution

    out: dict[str, dict[str, Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = {"choices": list(dist.choices)}
        else:
            out[name] = {"low": dist.low, "high": dist.high, "log": dist.log, "step": dist.step}
    return out


def in_distribution(dist: Any, value: Any) -> bool:
    """True if ``value`` is a point of ``dist`` (Optuna's public attributes only)."""
    from optuna.distributions import CategoricalDistribution

    if value is None:
        return False
    if isinstance(dist, CategoricalDistribution):
        return any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in dist.choices
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not dist.low <= value <= dist.high:
        return False
    step = getattr(dist, "step", None)
    if step is None:
        return True
    offset = (value - dist.low) / step
    return abs(offset - round(offset)) < 1e-8


def tunable_knobs(task: Task, root: Program, device_kind: str) -> list[Knob]:
    """Knobs of the root program the builtin proposer tunes on this kind of device: the
    declared ones and those the default box covers."""
    skip = "_CUDA" if device_kind == "cpu" else "_CPU"
    knobs = []
    for knob in discover_knobs(root, task.knobs):
        if knob.name.upper().endswith(skip):
            continue
        if knob.name in task.space or distribution_for(knob) is not None:
            knobs.append(knob)
    return knobs


def _round(value: Any, kind: str) -> KnobValue:
    if kind == "float":
        value = float(value)
        return 0.0 if value == 0 else float(f"{value:.3g}")
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _source(trace: ExperimentPublic) -> str:
    """Where a prior comes from: a seed pack, or the hardware class and budget it ran on."""
    if not run_here(trace):
        return "a seed pack"
    budget = f"{trace.budget_s:g} s" if trace.budget_s is not None else "an unknown budget"
    return f"{trace.hardware or 'unknown hardware'} at {budget}"


def line_edits(base: Program, new: Program) -> list[Edit]:
    """Search/replace edits, one per changed line, each search unique in its file."""
    edits = []
    for path, old_text in base.files:
        new_text = new.get(path)
        if new_text == old_text:
            continue
        old_lines = old_text.splitlines(keepends=True)
        new_lines = new_text.splitlines(keepends=True)
        if len(old_lines) != len(new_lines):
            raise ValueError("line_edits expects line-for-line rewrites")
        for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)):
            if a == b:
                continue
            start = i
            while old_text.count("".join(old_lines[start : i + 1])) != 1 and start > 0:
                start -= 1
            context = "".join(old_lines[start:i])
            edits.append(Edit(path=path, search=context + a, replace=context + b))
    return edits


class BuiltinProposer(Proposer):
    """TPE over the knob space of one task, warm-started from memory. One per agent."""

    name = "builtin"
    reads_text = False

    def __init__(
        self,
        task: Task,
        root: Program,
        device_kind: str,
        hardware: str,
        *,
        seed: int | None = None,
        budget: float | None = None,
        moves: str = "whole",
        n_startup_trials: int = N_STARTUP_TRIALS,
        max_tries: int = 64,
    ) -> None:
        import optuna

        if moves not in MOVES:
            raise ValueError(f"moves {moves!r}: expected one of {', '.join(MOVES)}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.task = task
        self.root = root
        self.hardware = hardware
        self.budget = budget  # None: the first request's (runs at other budgets: no trials)
        self.moves = moves
        self.space: dict[str, Any] = search_space(task, root, device_kind)
        if not self.space:
            raise ValueError(
                f"task {task.name!r}: no tunable knobs in {', '.join(task.editable)} "
                "(module-level UPPER_CASE numbers/bools, or the names task.toml lists)"
            )
        knobs = [k for k in discover_knobs(root, task.knobs) if k.name in self.space]
        self.kinds = {k.name: k.kind for k in knobs}
        self.root_config: dict[str, Any] = {k.name: k.value for k in knobs}
        self.max_tries = max_tries
        self._rng = random.Random(seed)
        self._tpe = tpe_sampler(seed, n_startup_trials)
        self.study = optuna.create_study(direction=task.direction, sampler=self._tpe)
        self._lock = threading.Lock()
        self._configs: dict[str, dict[str, Any]] = {}  # trace/claim id -> full knob config
        self._synced: set[str] = set()  # trace ids already turned into trials
        self._seen: set[str] = set()  # programs memory would refuse here as already run
        self._pending: dict[str, int] = {}  # fingerprint -> running trial number
        self._own: set[str] = set()  # fingerprints of my proposal not yet claimed
        self._since: datetime | None = None
        self._n_startup = n_startup_trials
        self._worst: float | None = None  # the worst value of the study's finished trials
        # runs elsewhere (other hardware or budget) and seed-pack runs: never trials here
        self._priors: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # source -> runs

    # -- memory -> trials -----------------------------------------------------

    def _config_of(self, parent_id: str | None, knobs: dict[str, Any]) -> dict[str, Any]:
        config = dict(self._configs.get(parent_id or "", self.root_config))
        for name, change in knobs.items():
            if name in config and isinstance(change, list | tuple) and len(change) == 2:
                config[name] = change[1]
        return config

    def _in_space(self, config: dict[str, Any]) -> bool:
        return all(in_distribution(dist, config.get(name)) for name, dist in self.space.items())

    def _add_trial(
        self,
        config: dict[str, Any],
        state: Any,
        value: float | None,
        intermediate: dict[int, float] | None = None,
    ) -> int | None:
        """Add a finished, pruned or running trial for ``config``; its number (None if
        off-space). ``intermediate``: a pruned trial's values by step."""
        from optuna.trial import TrialState, create_trial

        if not self._in_space(config):
            return None
        params = {name: config[name] for name in self.space}
        number = len(self.study.get_trials(deepcopy=False))  # numbers count up from 0
        trial = create_trial(
            state=state,
            value=value,
            params=params,
            distributions=dict(self.space),
            intermediate_values=intermediate,
        )
        self.study.add_trial(trial)
        if state == TrialState.COMPLETE:
            self._track_worst(value)
        return number

    def _track_worst(self, value: float | None) -> None:
        """Keep the worst finished value (the penalty of a failure, :meth:`_outcome`)
        without reading every trial again: a warm start from N traces stays O(N)."""
        if value is None:
            return
        if self._worst is None:
            self._worst = value
        elif self.task.direction == "minimize":
            self._worst = max(self._worst, value)
        else:
            self._worst = min(self._worst, value)

    def _outcome(self, trace: ExperimentPublic) -> tuple[Any, float | None]:
        """The trial state and value of a ran trace: its metric; for a crash or a timeout
        the penalty (the worst finished value so far), or a failed trial before any."""
        from optuna.trial import TrialState

        metric = trace.metric
        if trace.status in (Status.keep, Status.discard):
            if metric is not None and math.isfinite(metric):
                return TrialState.COMPLETE, metric
            return TrialState.FAIL, None
        if self._worst is None:
            return TrialState.FAIL, None
        return TrialState.COMPLETE, self._worst

    def _finish(self, number: int, trace: ExperimentPublic) -> None:
        from optuna.trial import TrialState

        state, value = self._outcome(trace)
        self.study.tell(number, value, state=state)
        if state == TrialState.COMPLETE:
            self._track_worst(value)

    def _take(self, trace: ExperimentPublic) -> None:
        from optuna.trial import TrialState

        self._synced.add(trace.id)
        off_space = bool(trace.diff.strip()) and not trace.knobs and trace.role != Role.baseline
        self._configs[trace.id] = self._config_of(trace.parent_id, trace.knobs)
        if trace.status not in RAN_STATUSES:
            return
        here = (
            (not trace.hardware or trace.hardware == self.hardware)
            and (self.budget is None or trace.budget_s == self.budget)
            and run_here(trace)  # a seed or an import: evidence from elsewhere, never a trial
        )
        if here and trace.status in SEEN_STATUSES and trace.role in SEEN_ROLES:
            self._seen.add(trace.fingerprint)  # what memory's "already ran" refuses
        if self._short_run(trace):
            return
        pending = self._pending.pop(trace.fingerprint, None)
        if pending is not None:  # a claimed run ended; elsewhere, its value is no trial here
            if here:
                self._finish(pending, trace)
            else:
                self.study.tell(pending, state=TrialState.FAIL)
            return
        if off_space:
            return
        if here:
            if trace.role == Role.baseline and trace.parent_id is None:
                return  # the root's replicates: measured, never sampled (see the docstring)
            self._add_trial(self._configs[trace.id], *self._outcome(trace))
            return
        config = self._configs[trace.id]
        metric = trace.metric
        judged = trace.status in (Status.keep, Status.discard)
        if judged and metric is not None and math.isfinite(metric) and self._in_space(config):
            self._priors.setdefault(_source(trace), []).append((metric, config))

    def _short_run(self, trace: ExperimentPublic) -> bool:
        """Take a short run of this hardware class at another budget (multi-fidelity; True
        if ``trace`` was one): promoted, it is left to its full run (the claim's running
        trial stays); not promoted, its program is seen and it is a pruned trial at its
        metric -- TPE ranks pruned trials below every finished one, as for Optuna's own
        pruners -- and a crash or a timeout is the penalised trial of a failure here."""
        from optuna.trial import TrialState

        if trace.role != Role.short or not run_here(trace) or trace.budget_s == self.budget:
            return False
        if trace.hardware and trace.hardware != self.hardware:
            return False
        if trace.status == Status.keep:
            return True
        if trace.status in SHORT_SEEN_STATUSES:  # memory's rule: a timeout may run again
            self._seen.add(trace.fingerprint)
        pending = self._pending.pop(trace.fingerprint, None)
        if pending is not None:
            self.study.tell(pending, state=TrialState.FAIL)
        config = self._configs[trace.id]
        if trace.status == Status.discard and trace.metric is not None:
            step = round((trace.budget_s or 0) * 1000)  # the short budget in milliseconds
            self._add_trial(config, TrialState.PRUNED, None, {step: trace.metric})
        else:
            self._add_trial(config, *self._outcome(trace))
        return True

    def sync(self, store: Store, agent_id: str | None = None) -> int:
        """Turn new traces into trials and active claims into running trials
        (``agent_id``: only that agent's own traces, and no claims -- recall off)."""
        from optuna.trial import TrialState

        added = 0
        newest = self._since
        since = self._since - SYNC_OVERLAP if self._since is not None else None
        offset = 0
        while True:
            page = store.query_traces(
                TraceQuery(
                    task=self.task.name,
                    agent_id=agent_id,
                    since=since,
                    sort="created_at",
                    limit=MAX_PAGE,
                    offset=offset,
                )
            )
            for trace in page.data:
                if newest is None or trace.created_at > newest:
                    newest = trace.created_at
                if trace.id not in self._synced:
                    self._take(trace)
                    added += 1
            offset += len(page.data)
            if len(page.data) < MAX_PAGE:
                break
        self._since = newest
        claims = store.active_claims(self.task.name) if agent_id is None else []
        claimed = set()
        for claim in claims:
            claimed.add(claim.fingerprint)
            if claim.fingerprint in self._pending or claim.fingerprint in self._seen:
                continue
            config = self._config_of(claim.parent_id, claim.knobs)
            trial_id = self._add_trial(config, TrialState.RUNNING, None)
            if trial_id is not None:
                self._pending[claim.fingerprint] = trial_id
        for fp in list(self._pending):
            if fp not in claimed and fp not in self._own:
                self.study.tell(self._pending.pop(fp), state=TrialState.FAIL)
        return added

    # -- proposing -------------------------------------------------------------

    def propose(self, request: ProposalRequest) -> Proposal:
        from optuna.trial import TrialState

        with self._lock:
            if self.budget is None and not self._synced:
                self.budget = request.budget
            self._own = set()  # my previous proposal is claimed (or refused) by now
            self.sync(request.store, None if request.recall else request.agent_id)
            base = request.base
            base_config = self._config_of(None, {})
            # a base whose code another proposer changed (hybrid) may lack some knobs: only
            # the knobs it holds are rewritten
            held = {k.name: k.value for k in discover_knobs(base, self.task.knobs)}
            base_config.update({n: v for n, v in held.items() if n in self.space})
            prior = self._next_prior(base, base_config, set(held))
            if prior is not None:
                self.study.enqueue_trial({n: prior[0][n] for n in self.space})
            for attempt in range(self.max_tries):
                trial, chosen = self._ask(attempt, base_config)
                values = {n: self._value(n, trial.params[n]) for n in chosen}
                changes = {n: v for n, v in values.items() if v != base_config[n] and n in held}
                if not changes:
                    self.study.tell(trial, state=TrialState.FAIL)
                    continue
                program = set_knobs(base, changes, self.task.knobs)
                fp = program.fingerprint
                if fp == base.fingerprint or fp in self._seen or fp in self._pending:
                    self.study.tell(trial, state=TrialState.FAIL)
                    continue
                self._pending[fp] = trial.number
                self._own.add(fp)
                parts = [
                    f"{n} {format_value(base_config[n])} -> {format_value(v)}"
                    for n, v in sorted(changes.items())
                ]
                n_trials = len(self.study.get_trials(deepcopy=False))
                why = f"TPE over {n_trials} trials, {self.moves}"
                if prior is not None and attempt == 0:
                    why = f"a prior: the best runs elsewhere first ({prior[1]})"
                hypothesis = f"{'; '.join(parts)} ({why})"
                return Proposal(hypothesis=hypothesis, edits=line_edits(base, program))
            where = "in the search space" if self.moves == "whole" else "around the base"
            raise SearchExhausted(
                f"no unseen program among {self.max_tries} samples {where} "
                f"({len(self._seen)} programs of this task already ran)"
            )

    def _startup(self) -> bool:
        """True while fewer than ``n_startup_trials`` programs besides the root have a
        finished trial here: the phase in which TPE would sample at random."""
        from optuna.trial import TrialState

        root = tuple(self.root_config[n] for n in self.space)
        done = {
            tuple(t.params[n] for n in self.space)
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        }
        return len(done - {root}) < self._n_startup

    def _ranked_priors(
        self, base: Program, base_config: dict[str, Any], held: set[str]
    ) -> Iterator[tuple[dict[str, Any], str, Program]]:
        """Prior configurations not run here nor running, best first, each with where it
        comes from and its program (``base`` with its knob values): ranked within their own
        source (hardware class and budget, or a seed pack) by the mean of the
        configuration's runs there (a program re-run there is not ranked by its luckiest
        run), the best of each source first."""
        ranked: list[tuple[float, int, dict[str, Any], str]] = []
        for i, (source, runs) in enumerate(sorted(self._priors.items())):
            grouped: dict[tuple[tuple[str, Any], ...], list[float]] = {}
            for metric, config in runs:
                grouped.setdefault(tuple(sorted(config.items())), []).append(metric)
            reverse = self.task.direction == "maximize"
            ordered = sorted(
                ((fmean(values), dict(key)) for key, values in grouped.items()),
                key=lambda r: r[0],
                reverse=reverse,
            )
            for k, (_, config) in enumerate(ordered):
                ranked.append((k / len(ordered), i, config, f"{source}, rank {k + 1}"))
        given: set[str] = set()
        for _, _, config, label in sorted(ranked, key=lambda r: (r[0], r[1])):
            changes = {n: v for n, v in config.items() if v != base_config[n] and n in held}
            if not changes:
                continue
            program = set_knobs(base, changes, self.task.knobs)
            fp = program.fingerprint
            if fp not in self._seen and fp not in self._pending and fp not in given:
                given.add(fp)
                yield config, label, program

    def _next_prior(
        self, base: Program, base_config: dict[str, Any], held: set[str]
    ) -> tuple[dict[str, Any], str] | None:
        """The best prior configuration not run here nor running, with where it comes from
        (:meth:`_ranked_priors`). None after the start-up phase."""
        if self.moves != "whole" or not self._priors or not self._startup():
            return None
        for config, label, _ in self._ranked_priors(base, base_config, held):
            return config, label
        return None

    def best_priors(
        self, store: Store, limit: int
    ) -> list[tuple[Program, str, dict[str, list[Any]]]]:
        """The ``limit`` best prior programs of memory not run here (:meth:`_ranked_priors`
        from the root), each with where it comes from and its knob changes against the root
        (``{name: [old, new]}``): what a swarm measures like its root before its agents
        start (``agents.baseline.measure_priors``). Empty for neighbour moves, which never
        take priors."""
        if self.moves != "whole" or limit <= 0:
            return []
        with self._lock:
            self.sync(store)
            root = self.root_config
            ranked = self._ranked_priors(self.root, dict(root), set(root))
            return [
                (program, label, {n: [root[n], v] for n, v in config.items() if v != root[n]})
                for config, label, program in islice(ranked, limit)
            ]

    def _ask(self, attempt: int, base_config: dict[str, Any]) -> tuple[Any, list[str]]:
        """A new trial and the knobs it sets: all of them (whole moves), or one knob of the
        base -- two after 12 tries, three after 32 -- the rest fixed (neighbour moves)."""
        import optuna

        names = list(self.space)
        if self.moves == "whole":
            self.study.sampler = self._tpe
            return self.study.ask(dict(self.space)), names
        width = 1 if attempt < 12 else 2 if attempt < 32 else 3
        chosen = self._rng.sample(names, min(width, len(names)))
        fixed = {n: base_config[n] for n in names if n not in chosen}
        with warnings.catch_warnings():  # experimental / fixed value out of range
            warnings.simplefilter("ignore")
            self.study.sampler = optuna.samplers.PartialFixedSampler(fixed, self._tpe)
            return self.study.ask(dict(self.space)), chosen

    def _value(self, name: str, sampled: Any) -> KnobValue:
        """A sampled value as the knob's source will hold it: floats to 3 significant
        digits where that stays inside the knob's distribution."""
        rounded = _round(sampled, self.kinds[name])
        if in_distribution(self.space[name], rounded):
            return rounded
        return float(sampled) if self.kinds[name] == "float" else rounded
