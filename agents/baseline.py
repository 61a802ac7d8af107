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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from agents.execute import Bench
from agents.judge import NoNoise, judge_replicate, noise_used
from agents.program import Program
from agents.program import diff as program_diff
from agents.runner import run_seed
from agents.tracing import Author, trace_from_run, write_trace
from memory.base import Store
from memory.models import ExperimentPublic, Role, Status, TraceQuery, new_id

log = logging.getLogger(__name__)


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
    store: Store, seat: Seat, root: Program, number: int, *, diff: str = "", origin: str = ""
) -> ExperimentPublic:
    """Replicate ``number`` (from 1) of ``root`` on ``seat``, recorded as a baseline."""
    trace_id = new_id()
    outcome = seat.bench.execute(root, f"baseline-{trace_id}", seed=run_seed(trace_id))
    verdict = judge_replicate(outcome.result, outcome.tampered)
    what = f"the program of trace {origin}" if origin else "the unmodified program"
    trace = trace_from_run(
        seat.author,
        outcome,
        verdict,
        trace_id=trace_id,
        role=Role.baseline,
        parent_id=None,
        hypothesis=f"baseline replicate {number}: {what}",
        fingerprint=root.fingerprint,
        diff=diff,
    )
    write_trace(store, trace)
    return store.get_trace(trace_id)


def _run_batch(
    store: Store, batch: list[Seat], root: Program, first: int, *, diff: str, origin: str
) -> list[ExperimentPublic | BaseException]:
    """Replicates ``first``, ``first + 1``, ... in parallel, one per seat of ``batch``."""
    out: list[ExperimentPublic | BaseException] = [RuntimeError("not run")] * len(batch)

    def one(i: int) -> None:
        try:
            out[i] = run_replicate(store, batch[i], root, first + i, diff=diff, origin=origin)
        except BaseException as exc:  # re-raised by the caller's thread
            out[i] = exc

    threads = [
        threading.Thread(target=one, args=(i,), name=f"baseline-{first + i}")
        for i in range(len(batch))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


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
        out = _run_batch(store, batch, root, len(have) + 1, diff=diff, origin=origin)
        traces: list[ExperimentPublic] = []
        for i, seat in enumerate(batch):
            item = out[i]
            if isinstance(item, BaseException):
                raise item
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


def run_prior_replicate(
    store: Store,
    seat: Seat,
    root: Program,
    root_id: str,
    prior: Program,
    label: str,
    number: int,
    knobs: dict[str, list[Any]],
) -> ExperimentPublic:
    """Replicate ``number`` of ``prior`` (a configuration from runs elsewhere) on ``seat``,
    recorded like a root replicate (role ``baseline``: no verdict chose it) with the root's
    first replicate ``root_id`` as its parent, its diff and knob changes against the root."""
    trace_id = new_id()
    outcome = seat.bench.execute(prior, f"baseline-{trace_id}", seed=run_seed(trace_id))
    verdict = judge_replicate(outcome.result, outcome.tampered)
    trace = trace_from_run(
        seat.author,
        outcome,
        verdict,
        trace_id=trace_id,
        role=Role.baseline,
        parent_id=root_id,
        hypothesis=f"prior replicate {number}: {label}",
        fingerprint=prior.fingerprint,
        diff=program_diff(root, prior),
        knobs=knobs,
    )
    write_trace(store, trace)
    return store.get_trace(trace_id)


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
        (program, label, knobs, number)
        for program, label, knobs in priors
        for number in range(1, replicates + 1)
    ]
    done: list[ExperimentPublic] = []
    for first in range(0, len(jobs), len(seats)):
        if stop.is_set():
            break
        batch = jobs[first : first + len(seats)]
        out: list[ExperimentPublic | BaseException] = [RuntimeError("not run")] * len(batch)

        def one(i: int, batch: list[Any] = batch, out: list[Any] = out) -> None:
            program, label, knobs, number = batch[i]
            try:
                out[i] = run_prior_replicate(
                    store, seats[i], root, root_id, program, label, number, knobs
                )
            except BaseException as exc:  # re-raised by the caller's thread
                out[i] = exc

        threads = [
            threading.Thread(target=one, args=(i,), name=f"prior-{first + i}")
            for i in range(len(batch))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for item in out:
            if isinstance(item, BaseException):
                raise item
            done.append(item)
    return done
