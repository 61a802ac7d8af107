"""Writing an agent's traces: runs (experiments and baseline replicates), refusals, and the
agent's status row.

Every run, whatever made it, becomes a trace through :func:`trace_from_run`; every trace is
written through :func:`write_trace`, which is idempotent by id (a resumed ``record`` never
adds a trace twice).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agents.devices import Device
from agents.execute import Outcome, SetupFailed
from agents.judge import Verdict
from agents.task import Task
from memory.base import Store
from memory.errors import NotFound
from memory.models import (
    AgentCreate,
    ExperimentCreate,
    Role,
    Status,
    new_id,
    storable,
    storable_text,
)

# Text a program printed (or a proposer wrote) that a trace keeps: memory refuses NUL bytes
# and lone surrogates, so they are cleaned here rather than losing the trace.
_PRINTED_TEXT = ("hypothesis", "diff", "log_tail", "error")

log = logging.getLogger(__name__)

FEEDBACK_KEEP = 6  # refusal reasons kept for the proposer


def memory_gb(summary: dict[str, Any]) -> float | None:
    """``peak_memory_mb`` of a run's summary in GB (None if absent or not a number)."""
    peak = summary.get("peak_memory_mb")
    if isinstance(peak, bool) or not isinstance(peak, int | float):
        return None
    return round(peak / 1024, 4)


@dataclass(frozen=True)
class Author:
    """Who writes a trace: the swarm, the agent, its device, and the run budget."""

    task: Task
    swarm_id: str
    agent_id: str
    device: Device
    budget: float

    def trace(self, status: Status, **fields: Any) -> ExperimentCreate:
        """A trace of this author; ``fields`` fill the rest (``resources`` get the budget).
        What a program printed is made storable (``memory.models.storable``): a NaN
        becomes its text, NUL bytes and lone surrogates are replaced."""
        resources = storable({"budget_s": self.budget, **fields.pop("resources", {})})
        for key in _PRINTED_TEXT:
            if isinstance(fields.get(key), str):
                fields[key] = storable_text(fields[key])
        return ExperimentCreate(
            task=self.task.name,
            swarm_id=self.swarm_id,
            agent_id=self.agent_id,
            metric_name=self.task.metric_name,
            direction=self.task.direction,
            device=self.device.name,
            hardware=self.device.hardware,
            status=status,
            budget_s=self.budget,
            resources=resources,
            **fields,
        )

    def cut_off(self, short_budget: float | None, **fields: Any) -> ExperimentCreate:
        """The ``interrupted`` trace of a run its swarm, process or node stopped: the
        program's short run at ``short_budget`` (role short) when that was in flight, else
        its run at this author's budget (role experiment)."""
        if short_budget is not None:
            return replace(self, budget=short_budget).trace(
                Status.interrupted, role=Role.short, **fields
            )
        return self.trace(Status.interrupted, role=Role.experiment, **fields)


def trace_from_run(
    author: Author,
    outcome: Outcome,
    verdict: Verdict,
    *,
    trace_id: str,
    role: Role,
    parent_id: str | None,
    hypothesis: str,
    fingerprint: str,
    diff: str = "",
    knobs: dict[str, Any] | None = None,
    judged: dict[str, Any] | None = None,
    proposer: str = "",
    short_id: str = "",
) -> ExperimentCreate:
    """The trace of one finished (or cut-off) run, judged ``verdict``: with its seed, the
    verdict's reason and what it was judged against (``judged``: base_metric, base_n,
    judged_metric, judged_n, noise_sd, noise_n, threshold; default: the verdict's own), and
    the ``proposer`` that made it ("" for a baseline or a re-measure)."""
    result = outcome.result
    ran_ok = verdict.status in (Status.keep, Status.discard)
    against = judged if judged is not None else judged_fields(verdict)
    return author.trace(
        verdict.status,
        id=trace_id,
        role=role,
        parent_id=parent_id,
        hypothesis=hypothesis,
        fingerprint=fingerprint,
        diff=diff,
        knobs=knobs or {},
        metric=result.metric,  # a tampered run's metric is kept as evidence of its claim
        memory_gb=memory_gb(result.summary),
        resources=outcome.resources,
        log_tail=result.log_tail,
        error="" if ran_ok else verdict.reason,
        reason=verdict.reason,
        seed=result.seed,
        proposer=proposer,
        short_id=short_id,
        **against,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
        duration_s=result.duration_s,
    )


def judged_fields(verdict: Verdict) -> dict[str, Any]:
    """What ``verdict`` was judged against, as trace fields."""
    return {
        "base_metric": verdict.base_metric,
        "base_n": verdict.base_n,
        "judged_metric": verdict.judged_metric,
        "judged_n": verdict.judged_n,
        "noise_sd": verdict.noise_sd,
        "noise_n": verdict.noise_n,
        "threshold": verdict.threshold,
    }


def write_trace(store: Store, trace: ExperimentCreate) -> bool:
    """Add ``trace`` unless a trace with its id exists. True if it was added."""
    if trace.id is not None:
        try:
            store.get_trace(trace.id)
            return False
        except NotFound:
            pass
    store.add_trace(trace)
    return True


def set_agent(
    store: Store,
    author: Author,
    name: str,
    status: str,
    *,
    base_id: str | None,
    experiments: int,
    hypothesis: str = "",
) -> None:
    """The agent's row in memory (what the dashboard shows)."""
    store.upsert_agent(
        AgentCreate(
            id=author.agent_id,
            swarm_id=author.swarm_id,
            name=name,
            device=author.device.name,
            status=status,
            base_id=base_id,
            hypothesis=hypothesis,
            experiments=experiments,
        )
    )


def refusal(
    author: Author,
    status: Status,
    reason: str,
    *,
    parent_id: str | None,
    hypothesis: str,
    fingerprint: str,
    diff: str = "",
    knobs: dict[str, Any] | None = None,
    log_tail: str = "",
    proposer: str = "",
    matched_id: str = "",
) -> ExperimentCreate:
    """The trace of a proposal refused before any run (``invalid``, ``duplicate`` or
    ``near_duplicate``: ``matched_id`` is the trace or claim it nearly repeats); ``error``
    and ``reason`` both say why."""
    return author.trace(
        status,
        id=new_id(),
        role=Role.experiment,
        parent_id=parent_id,
        hypothesis=hypothesis,
        fingerprint=fingerprint,
        diff=diff,
        knobs=knobs or {},
        log_tail=log_tail,
        error=reason,
        reason=reason,
        proposer=proposer,
        matched_id=matched_id,
    )


def unapplied_fingerprint(text: str) -> str:
    """Fingerprint of a proposal that never became a program: a digest of its text."""
    return "unapplied-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def setup_failure(author: Author, failure: SetupFailed, home: Path) -> ExperimentCreate:
    """The ``crash`` trace of a failed setup step. Its fingerprint names the setup
    (``setup-<digest>``), never the program, so the program is not marked as seen."""
    command = " ".join(author.task.setup)
    digest = hashlib.sha256(command.encode()).hexdigest()[:40]
    result = failure.result
    resources = result.stored_resources(home)
    return author.trace(
        Status.crash,
        id=new_id(),
        role=Role.experiment,
        hypothesis=f"setup: {command}",
        fingerprint=f"setup-{digest}",
        log_tail=result.log_tail,
        error=f"the task's setup step failed ({result.status}): {result.error}; "
        f"log: {resources.get('log', '')}",
        resources=resources,
        duration_s=result.duration_s,
    )
