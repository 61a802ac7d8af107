"""The builtin proposer: Optuna's TPE over the task's knobs, no LLM.

- **Space** (fixed per task, centred on the task's original values): floats on a log
  scale from value/4 to value*4 (values in (0, 1) capped below 1; 0.0 -> uniform
  [0, 0.25]); ints that are powers of two -> choices value/4 .. value*4 by doubling;
  other ints -> steps from value/2 to value*2; bools -> both; strings -> the choices
  their line's comment lists. On a CPU device knobs ending in ``_CUDA`` are left out,
  on a GPU those ending in ``_CPU``.
- **Warm start**: every trace of this task in memory becomes a trial (its knob values
  rebuilt along its lineage): keep/discard with their metric, crash/timeout as failed
  trials; a confirmation is one more trial of its program. Traces from another hardware
  class are left out.
- **Pending trials**: every active claim is a running trial, so TPE's constant liar
  steers parallel agents apart.
- **Neighbourhood moves**: each proposal changes one knob of the agent's base (two or
  three after repeated duplicates), the rest fixed (``PartialFixedSampler``).
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
from datetime import datetime, timedelta
from typing import Any

from agents.knobs import Knob, KnobValue, discover_knobs, format_value, set_knobs
from agents.program import Edit, Program
from agents.proposers.base import Proposal, ProposalRequest, Proposer, SearchExhausted
from agents.task import Task
from memory.base import Store
from memory.models import (
    RAN_STATUSES,
    SEEN_ROLES,
    SEEN_STATUSES,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
)

log = logging.getLogger(__name__)

PAGE = 1000
SYNC_OVERLAP = timedelta(seconds=30)  # re-read this much history to catch late commits


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
    """Knobs of the root program the builtin proposer tunes on this kind of device."""
    skip = "_CUDA" if device_kind == "cpu" else "_CPU"
    knobs = []
    for knob in discover_knobs(root, task.knobs):
        if knob.name.upper().endswith(skip):
            continue
        if distribution_for(knob) is not None:
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

    def __init__(
        self,
        task: Task,
        root: Program,
        device_kind: str,
        hardware: str,
        *,
        seed: int | None = None,
        n_startup_trials: int = 5,
        max_tries: int = 64,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.task = task
        self.root = root
        self.hardware = hardware
        self.knobs = tunable_knobs(task, root, device_kind)
        if not self.knobs:
            raise ValueError(
                f"task {task.name!r}: no tunable knobs in {', '.join(task.editable)} "
                "(module-level UPPER_CASE numbers/bools, or the names task.toml lists)"
            )
        self.kinds = {k.name: k.kind for k in self.knobs}
        self.space: dict[str, Any] = {k.name: distribution_for(k) for k in self.knobs}
        self.root_config: dict[str, Any] = {k.name: k.value for k in self.knobs}
        self.max_tries = max_tries
        self._rng = random.Random(seed)
        self._tpe = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup_trials, constant_liar=True
        )
        self.study = optuna.create_study(direction=task.direction, sampler=self._tpe)
        self._lock = threading.Lock()
        self._configs: dict[str, dict[str, Any]] = {}  # trace/claim id -> full knob config
        self._synced: set[str] = set()  # trace ids already turned into trials
        self._seen: set[str] = set()  # programs memory would refuse here as already run
        self._pending: dict[str, int] = {}  # fingerprint -> running trial number
        self._own: set[str] = set()  # fingerprints of my proposal not yet claimed
        self._since: datetime | None = None

    # -- memory -> trials -----------------------------------------------------

    def _config_of(self, parent_id: str | None, knobs: dict[str, Any]) -> dict[str, Any]:
        config = dict(self._configs.get(parent_id or "", self.root_config))
        for name, change in knobs.items():
            if name in config and isinstance(change, list | tuple) and len(change) == 2:
                config[name] = change[1]
        return config

    def _in_space(self, config: dict[str, Any]) -> bool:
        return all(in_distribution(dist, config.get(name)) for name, dist in self.space.items())

    def _add_trial(self, config: dict[str, Any], state: Any, value: float | None) -> int | None:
        """Add a finished or running trial for ``config``; its number (None if off-space)."""
        from optuna.trial import create_trial

        if not self._in_space(config):
            return None
        params = {name: config[name] for name in self.space}
        number = len(self.study.get_trials(deepcopy=False))  # numbers count up from 0
        trial = create_trial(
            state=state, value=value, params=params, distributions=dict(self.space)
        )
        self.study.add_trial(trial)
        return number

    def _finish(self, number: int, trace: ExperimentPublic) -> None:
        from optuna.trial import TrialState

        if trace.status in (Status.keep, Status.discard) and trace.metric is not None:
            self.study.tell(number, [trace.metric])
        else:
            self.study.tell(number, state=TrialState.FAIL)

    def _take(self, trace: ExperimentPublic) -> None:
        from optuna.trial import TrialState

        self._synced.add(trace.id)
        off_space = bool(trace.diff.strip()) and not trace.knobs and trace.role != Role.baseline
        self._configs[trace.id] = self._config_of(trace.parent_id, trace.knobs)
        if trace.status not in RAN_STATUSES:
            return
        same_hardware = not trace.hardware or trace.hardware == self.hardware
        if same_hardware and trace.status in SEEN_STATUSES and trace.role in SEEN_ROLES:
            self._seen.add(trace.fingerprint)  # what memory's "already ran" refuses
        pending = self._pending.pop(trace.fingerprint, None)
        if pending is not None:
            self._finish(pending, trace)
            return
        if off_space or (trace.hardware and trace.hardware != self.hardware):
            return
        metric_ok = trace.metric is not None and math.isfinite(trace.metric)
        if trace.status in (Status.keep, Status.discard) and metric_ok:
            self._add_trial(self._configs[trace.id], TrialState.COMPLETE, trace.metric)
        else:
            self._add_trial(self._configs[trace.id], TrialState.FAIL, None)

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
                    limit=PAGE,
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
            if len(page.data) < PAGE:
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
        import optuna
        from optuna.trial import TrialState

        with self._lock:
            self._own = set()  # my previous proposal is claimed (or refused) by now
            self.sync(request.store, None if request.recall else request.agent_id)
            base = request.base
            base_config = self._config_of(None, {})
            base_config.update(
                {
                    k.name: k.value
                    for k in discover_knobs(base, self.task.knobs)
                    if k.name in self.space
                }
            )
            names = list(self.space)
            for attempt in range(self.max_tries):
                width = 1 if attempt < 12 else 2 if attempt < 32 else 3
                chosen = set(self._rng.sample(names, min(width, len(names))))
                fixed = {n: base_config[n] for n in names if n not in chosen}
                with warnings.catch_warnings():  # experimental / fixed value out of range
                    warnings.simplefilter("ignore")
                    self.study.sampler = optuna.samplers.PartialFixedSampler(fixed, self._tpe)
                    trial = self.study.ask(dict(self.space))
                values = {n: _round(trial.params[n], self.kinds[n]) for n in chosen}
                changes = {n: v for n, v in values.items() if v != base_config[n]}
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
                hypothesis = f"{'; '.join(parts)} (TPE over {n_trials} trials)"
                return Proposal(hypothesis=hypothesis, edits=line_edits(base, program))
            raise SearchExhausted(
                f"no unseen program among {self.max_tries} samples around the base "
                f"({len(self._seen)} programs of this task already ran)"
            )
