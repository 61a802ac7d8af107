"""Noise measurement: replicate runs of the swarm's root program on the agents' devices.

Each replicate runs through the same path as every experiment (:meth:`Bench.execute`), with
its own ``LABSWARM_SEED``, is judged "ran / did not run" (:func:`agents.judge.judge_replicate`)
and recorded by :func:`agents.tracing.trace_from_run` with ``role=baseline``; the first
replicate is the root of every agent's lineage. Only this swarm's own replicates count (a
resumed swarm reuses them); a baseline from a pack, another swarm or another installation
never sets the noise. The noise is the sd memory pools over this swarm's repeated programs
(:meth:`memory.base.Store.noise`; at the start: these replicates). Identical replicates
stop the swarm with :func:`agents.judge.identical_message` unless the task declares a floor.
The rule is in :mod:`agents.judge`.

**Prior replicates** (:func:`measure_priors`): when memory holds runs of the task from
elsewhere (seed packs, other hardware classes or budgets) and the builtin proposer takes
whole configurations, the swarm then runs the best of those configurations
(``BuiltinProposer.best_priors``: one round of the agents, ``prior_replicates`` runs each)
before its agents start, recorded like the root's replicates with the root as parent.

**Finalists** (:func:`measure_finalists`, a swarm's ``finalists``): after its agents have
finished, the swarm re-measures its best programs -- by the mean of their runs here, the
root aside, whatever the verdict on their first run -- ``MIN_CHAMPION_RUNS`` times each
(role ``remeasure``: runs no verdict chose), so memory's champion rule can hand over the
best of them. Paired with ``confirm=False, remeasure=0`` it moves a swarm's re-tests from
after each keep to its end (docs/judging.md, "Finalists").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from statistics import fmean
from typing import Any

from agents.execute import Bench
from agents.judge import NoNoise, judge_replicate, noise_used
from agents.knobs import knob_values
from agents.program import Program
from agents.program import diff as program_diff
from agents.runner import run_seed
from agents.surrogate import encode, predicted_means
from agents.tracing import Author, trace_from_run, write_trace
from memory.base import Store
from memory.models import (
    MIN_CHAMPION_RUNS,
    Direction,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
    new_id,
)

log = logging.getLogger(__name__)

# how a swarm's finalists are chosen (SwarmConfig.finalists_by, :func:`finalists`)
FINALISTS_BY = ("mean", "model")
# when a swarm re-tests its keeps: as they happen, after the search, or chosen from its
# settings (SwarmConfig.retest, agents.swarm.resolve_retest)
RETEST = ("auto", "each", "end")


class BaselineError(RuntimeError):
    """The root program does not run, or the swarm stopped while measuring the noise."""


@dataclass(frozen=True)
class Seat:
    """One agent's place for replicate runs: who records, and where it runs."""

    name: str
    author: Author
    bench: Bench


@dataclass(frozen=True)
class Baseline:
    """The measured noise (sd, at least the task's floor) and the replicates (oldest first)."""

    noise: float
    replicates: list[ExperimentPublic]

    @property
    def baseline_id(self) -> str:
        """The first replicate: the root of every agent's lineage."""
        return self.replicates[0].id

    @property
    def metric(self) -> float | None:
        """Mean metric of the replicates."""
        values = [t.metric for t in self.replicates if t.metric is not None]
        return fmean(values) if values else None


def existing_baselines(
    store: Store, task: str, fingerprint: str, hardware: str, budget: float, swarm_id: str
) -> list[ExperimentPublic]:
    """This swarm's own finished replicates of ``fingerprint`` on this hardware and budget."""
    page = store.query_traces(
        TraceQuery(
            task=task,
            swarm_id=swarm_id,
            fingerprint=fingerprint,
            hardware=hardware,
            budget_s=budget,
            trusted=True,
            role=[Role.baseline],
            status=[Status.keep],
            sort="created_at",
            limit=100,
        )
    )
    return [t for t in page.data if t.metric is not None]


def run_replicate(
    store: Store,
    seat: Seat,
    program: Program,
    hypothesis: str,
    *,
    diff: str = "",
    parent_id: str | None = None,
    knobs: dict[str, list[Any]] | None = None,
    role: Role = Role.baseline,
) -> ExperimentPublic:
    """One replicate of ``program`` on ``seat``, a run no verdict chose: a baseline of the
    root (no parent), or of a prior (``parent_id``: the root's first replicate; ``diff``
    and ``knobs``: its changes against the root); or (``role`` ``remeasure``) a
    finalist's final re-measure (``parent_id``: its experiment)."""
    trace_id = new_id()
    outcome = seat.bench.execute(program, f"{role.value}-{trace_id}", seed=run_seed(trace_id))
    verdict = judge_replicate(outcome.result, outcome.tampered)
    trace = trace_from_run(
        seat.author,
        outcome,
        verdict,
        trace_id=trace_id,
        role=role,
        parent_id=parent_id,
        hypothesis=hypothesis,
        fingerprint=program.fingerprint,
        diff=diff,
        knobs=knobs,
    )
    write_trace(store, trace)
    return store.get_trace(trace_id)


def _in_parallel(
    seats: Sequence[Seat], jobs: Sequence[Callable[[Seat], ExperimentPublic]], name: str
) -> list[ExperimentPublic]:
    """Job ``i`` on ``seats[i]``, all at once; their traces, or the first job's error
    raised here."""
    out: list[ExperimentPublic | BaseException] = [RuntimeError("not run")] * len(jobs)

    def one(i: int) -> None:
        try:
            out[i] = jobs[i](seats[i])
        except BaseException as exc:  # re-raised by the caller's thread
            out[i] = exc

    threads = [
        threading.Thread(target=one, args=(i,), name=f"{name}-{i}") for i in range(len(jobs))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    traces: list[ExperimentPublic] = []
    for item in out:
        if isinstance(item, BaseException):
            raise item
        traces.append(item)
    return traces


def measure_noise(
    store: Store,
    root: Program,
    seats: Sequence[Seat],
    *,
    replicates: int,
    stop: threading.Event,
    diff: str = "",
    origin: str = "",
    on_start: Callable[[str], None] | None = None,
    floor: float | None = None,
) -> Baseline:
    """Run the missing replicates of ``root`` in parallel, one per seat, and return the
    noise. ``diff`` (against the task's program) and ``origin`` (a trace id) describe a
    root chosen with ``--start-from``; ``on_start(agent name)`` is told of each run;
    ``floor`` is the task's declared noise floor (``[noise].min``)."""
    first = seats[0].author
    have = existing_baselines(
        store,
        first.task.name,
        root.fingerprint,
        first.device.hardware,
        first.budget,
        first.swarm_id,
    )
    if len(have) < replicates:
        log.info("measuring noise: %d baseline run(s)", replicates - len(have))
    while len(have) < replicates:
        if stop.is_set():
            raise BaselineError("stopped while measuring the noise")
        batch = list(seats[: replicates - len(have)])
        if on_start is not None:
            for seat in batch:
                on_start(seat.name)
        what = f"the program of trace {origin}" if origin else "the unmodified program"
        jobs = [
            partial(
                run_replicate,
                store,
                program=root,
                hypothesis=f"baseline replicate {len(have) + 1 + i}: {what}",
                diff=diff,
            )
            for i in range(len(batch))
        ]
        traces: list[ExperimentPublic] = []
        for seat, item in zip(batch, _in_parallel(batch, jobs, "baseline"), strict=True):
            if stop.is_set() or item.status == Status.interrupted:
                raise BaselineError("stopped while measuring the noise")
            if item.status != Status.keep:
                raise BaselineError(
                    f"the swarm's root program does not run ({item.status.value}): "
                    f"{item.error}; log: {seat.bench.logs_dir / f'baseline-{item.id}.log'}"
                )
            traces.append(item)
        have += traces
    chosen = have[:replicates]
    estimate = store.noise(
        first.task.name, first.device.hardware, first.budget, swarm_id=first.swarm_id
    )
    try:
        noise = noise_used(estimate, floor)
    except NoNoise as exc:
        raise BaselineError(str(exc)) from None
    if noise is None:
        raise BaselineError("the baseline replicates measured no noise")
    if noise.floored and estimate is not None and estimate.identical:
        log.warning(
            "noise: the %d replicates are identical -- the program ignores LABSWARM_SEED; "
            "judging with the task's declared floor [noise].min = %.6g",
            estimate.n,
            noise.sd,
        )
    elif noise.floored:
        log.warning("noise: the measured sd is below the task's declared floor %.6g", noise.sd)
    log.info("noise sd %.6g from %d run(s), %d df", noise.sd, noise.n, noise.df)
    return Baseline(noise=noise.sd, replicates=chosen)


DEFAULT_PRIOR_REPLICATES = 2  # runs of each prior program before the agents start


def measure_priors(
    store: Store,
    root: Program,
    root_id: str,
    seats: Sequence[Seat],
    priors: Sequence[tuple[Program, str, dict[str, list[Any]]]],
    *,
    replicates: int,
    stop: threading.Event,
) -> list[ExperimentPublic]:
    """Run each prior program (``(program, where it comes from, knob changes)``)
    ``replicates`` times before the agents start, as many runs at once as there are seats,
    and return the traces. These runs were chosen before any of them ran here, like the
    root's replicates, so they are unselected: two of them let memory's champion rule
    weigh a prior against the start at once (``memory.models.champion_of``), where an
    agent's run of it would need a keep, a confirmation and two re-measures. A failed run
    is recorded with its status and the others go on; a stop ends the batch."""
    jobs = [
        partial(
            run_replicate,
            store,
            program=program,
            hypothesis=f"prior replicate {number}: {label}",
            diff=program_diff(root, program),
            parent_id=root_id,
            knobs=knobs,
        )
        for program, label, knobs in priors
        for number in range(1, replicates + 1)
    ]
    done: list[ExperimentPublic] = []
    for first in range(0, len(jobs), len(seats)):
        if stop.is_set():
            break
        done += _in_parallel(seats, jobs[first : first + len(seats)], "prior")
    return done


def finalists(
    store: Store,
    author: Author,
    root: Program,
    count: int,
    program_of: Callable[[ExperimentPublic], Program | None],
    *,
    space: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[Program, ExperimentPublic]]:
    """The ``count`` programs of this swarm with the best mean over their measured runs on
    its hardware class and budget (``Store.evidence``), the root aside, best first: each
    with the first judged run of the program (its experiment, keep or discard), whose
    trace the champion rule returns. A program whose experiment this swarm cannot rebuild
    (``program_of`` gives ``None``) is passed over.

    With a recorded search ``space`` (``finalists_by="model"``) the programs are ranked by
    the mean a Gaussian process over their knob values predicts (:mod:`agents.surrogate`),
    fitted to every measured program of the swarm, the root included; a program that sets
    a knob of the space to no value it can encode is passed over."""
    task, hardware, budget = author.task.name, author.device.hardware, author.budget
    evidence = store.evidence(task, hardware, budget, swarm_id=author.swarm_id)
    direction: Direction = author.task.direction
    measured = [(fp, s.mean) for fp, s in evidence.programs.items() if s.mean is not None]
    root_fingerprint = root.fingerprint
    heads: dict[str, tuple[Program, ExperimentPublic]] = {}

    def head(fingerprint: str) -> tuple[Program, ExperimentPublic] | None:
        if fingerprint not in heads:
            first = store.query_traces(
                TraceQuery(
                    task=task,
                    swarm_id=author.swarm_id,
                    fingerprint=fingerprint,
                    hardware=hardware,
                    budget_s=budget,
                    trusted=True,
                    role=[Role.experiment],
                    status=[Status.keep, Status.discard],
                    sort="created_at",
                    limit=1,
                )
            ).data
            program = program_of(first[0]) if first else None
            if program is None:
                return None
            heads[fingerprint] = (program, first[0])
        return heads[fingerprint]

    scores = dict(measured)
    if space is not None:
        scores = _model_scores(space, measured, root, head)
        log.info("finalists ranked by the model's predicted means of %d programs", len(scores))
    ranked = sorted(
        (fp for fp in scores if fp != root_fingerprint),
        key=scores.__getitem__,
        reverse=direction == "maximize",  # best first: a stable sort by "better than"
    )
    chosen: list[tuple[Program, ExperimentPublic]] = []
    for fingerprint in ranked:
        if len(chosen) >= count:
            break
        found = head(fingerprint)
        if found is None:
            score = scores[fingerprint]
            log.info("finalist %s (%.6g) passed over: no experiment here", fingerprint, score)
            continue
        chosen.append(found)
    return chosen


def _model_scores(
    space: Mapping[str, Mapping[str, Any]],
    measured: Sequence[tuple[str, float]],
    root: Program,
    head: Callable[[str], tuple[Program, ExperimentPublic] | None],
) -> dict[str, float]:
    """``{fingerprint: predicted mean}`` of the measured programs whose knob values
    encode under ``space`` (:func:`agents.surrogate.predicted_means`), the root (which
    has no experiment, only replicates) among them."""
    names = list(space)
    points: list[list[float]] = []
    kept: list[tuple[str, float]] = []
    for fingerprint, mean in measured:
        found = head(fingerprint) if fingerprint != root.fingerprint else (root, None)
        if found is None:
            continue
        try:
            points.append(encode(space, knob_values(found[0], names)))
        except (KeyError, TypeError, ValueError) as exc:
            log.info("finalist %s left out of the model: %s", fingerprint, exc)
            continue
        kept.append((fingerprint, mean))
    predictions = predicted_means(points, [m for _, m in kept])
    return {fp: p for (fp, _), p in zip(kept, predictions, strict=True)}


def measure_finalists(
    store: Store,
    seats: Sequence[Seat],
    chosen: Sequence[tuple[Program, ExperimentPublic]],
    *,
    stop: threading.Event,
    runs: int = MIN_CHAMPION_RUNS,
) -> list[ExperimentPublic]:
    """Run each of the ``chosen`` programs (:func:`finalists`) ``runs`` times, as many
    runs at once as there are seats, the best program first, and return the traces. A
    failed run is recorded with its status and the others go on; a stop ends the batch."""
    jobs = [
        partial(
            run_replicate,
            store,
            program=program,
            hypothesis=f"final re-measure {number} of {first.id}: {first.hypothesis}",
            parent_id=first.id,
            role=Role.remeasure,
        )
        for program, first in chosen
        for number in range(1, runs + 1)
    ]
    done: list[ExperimentPublic] = []
    for start in range(0, len(jobs), len(seats)):
        if stop.is_set():
            break
        batch = jobs[start : start + len(seats)]
        done += _in_parallel(seats[: len(batch)], batch, "final")
    return done
