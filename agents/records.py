"""Writing an agent's traces and refusals, and reading recalled traces back.

``write_trace`` is idempotent by id, so a resumed ``record`` never adds a trace twice.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from agents.context import AgentContext
from agents.state import AgentState
from memory.errors import NotFound
from memory.models import AgentCreate, ExperimentCreate, ExperimentPublic, Role, Status, new_id

log = logging.getLogger(__name__)

FEEDBACK_KEEP = 6  # refusal reasons kept for the proposer
NEAR_FAILURE_REL = 0.02  # knob values within 2% of a recorded failure count as the same


def now() -> datetime:
    return datetime.now(UTC)


def dump(trace: ExperimentPublic | None) -> dict[str, Any] | None:
    return None if trace is None else trace.model_dump(mode="json", exclude={"log_tail"})


def load(data: dict[str, Any] | None) -> ExperimentPublic | None:
    return None if data is None else ExperimentPublic.model_validate(data)


def set_agent(ctx: AgentContext, status: str, state: AgentState, hypothesis: str = "") -> None:
    ctx.store.upsert_agent(
        AgentCreate(
            id=ctx.agent_id,
            swarm_id=ctx.swarm_id,
            name=ctx.agent_name,
            device=ctx.device.name,
            status=status,
            base_id=state.get("base_id"),
            hypothesis=hypothesis,
            experiments=state.get("experiments", 0),
        )
    )


def write_trace(ctx: AgentContext, state: AgentState, status: Status, **fields: Any) -> str:
    """Record one trace of this agent (idempotent by id: a resumed record adds nothing)."""
    trace_id = fields.pop("id", None) or new_id()
    try:
        ctx.store.get_trace(trace_id)
        return trace_id
    except NotFound:
        pass
    proposal = state.get("proposal") or {}
    resources = {"budget_s": ctx.budget, **fields.pop("resources", {})}
    trace = ExperimentCreate(
        id=trace_id,
        task=ctx.task.name,
        swarm_id=ctx.swarm_id,
        agent_id=ctx.agent_id,
        parent_id=state.get("base_id"),
        role=Role.experiment,
        hypothesis=fields.pop("hypothesis", proposal.get("hypothesis", "")),
        metric_name=ctx.task.metric_name,
        direction=ctx.task.direction,
        device=ctx.device.name,
        hardware=ctx.device.hardware,
        status=status,
        resources=resources,
        **fields,
    )
    ctx.store.add_trace(trace)
    ran = trace.duration_s is not None
    ctx.emit("recorded", status=status.value, trace_id=trace_id, metric=trace.metric, ran=ran)
    return trace_id


def refuse(
    ctx: AgentContext, state: AgentState, status: Status, reason: str, **fields: Any
) -> dict[str, Any]:
    """Record a refusal and send the reason back to the proposer."""
    write_trace(ctx, state, status, error=reason, **fields)
    feedback = [*state.get("feedback", []), reason][-FEEDBACK_KEEP:]
    log.info("%s: %s refused: %s", ctx.agent_name, status.value, reason)
    return {
        "feedback": feedback,
        "refusals": state.get("refusals", 0) + 1,
        "status": status.value,
        "reason": reason,
        "claim_id": None,
        "candidate": {},
    }


def refuse_unapplied(
    ctx: AgentContext, state: AgentState, reason: str, text: str
) -> dict[str, Any]:
    """Refuse a proposal that never became a program (``invalid``). With no program to
    fingerprint, the fingerprint is a digest of ``text``, the output that was refused, and
    its tail is kept as the trace's log."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return refuse(
        ctx,
        state,
        Status.invalid,
        reason,
        fingerprint=f"unapplied-{digest}",
        log_tail=text[-2000:],
    )


def near_failure(ctx: AgentContext, state: AgentState, changes: dict[str, Any]) -> str:
    """A recorded crash/timeout on the same base with (nearly) the same knob changes."""
    if not changes:
        return ""
    for t in state.get("recalled", {}).get("related", []):
        if t.get("parent_id") != state.get("base_id") or t.get("status") not in (
            "crash",
            "timeout",
        ):
            continue
        old = t.get("knobs") or {}
        if set(old) != set(changes):
            continue
        same = True
        for name, (_, new) in changes.items():
            prev = old[name][1] if isinstance(old[name], list) and len(old[name]) == 2 else None
            if isinstance(new, bool) or isinstance(prev, bool) or not isinstance(new, int | float):
                same = same and new == prev
            elif isinstance(prev, int | float):
                scale = max(abs(prev), abs(new), 1e-12)
                same = same and abs(new - prev) / scale <= NEAR_FAILURE_REL
            else:
                same = False
        if same:
            return f"trace {t['id']} ({t['status']}: {t.get('error', '')[:160]})"
    return ""
