"""The nodes of one agent's iteration: recall -> propose -> check -> run -> judge -> record.

Each node reads the state, reaches memory, proposer, workspace and device through the
runtime context, and returns the state keys it changes. ``check`` records refusals
(``invalid``, ``duplicate``) itself, before any device is spent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from langgraph.runtime import Runtime

from agents.context import AgentContext
from agents.judge import Verdict, judge
from agents.knobs import knob_changes
from agents.program import EditError, Program, apply_edits, diff
from agents.proposers.base import (
    Proposal,
    ProposalInvalid,
    ProposalRequest,
    SearchExhausted,
)
from agents.state import AgentState, Recalled
from agents.tracing import (
    FEEDBACK_KEEP,
    refusal,
    set_agent,
    trace_from_run,
    unapplied_fingerprint,
    write_trace,
)
from memory.errors import AlreadyClaimed, AlreadyRan, NotFound
from memory.models import (
    ClaimCreate,
    ExperimentCreate,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
    better,
    new_id,
)

log = logging.getLogger(__name__)

RELATED_BY_BASE = 12
RELATED_BY_MEANING = 8
NEAR_FAILURE_REL = 0.02  # knob values within 2% of a recorded failure count as the same


def _status(ctx: AgentContext, status: str, state: AgentState, hypothesis: str = "") -> None:
    set_agent(
        ctx.store,
        ctx.author,
        ctx.agent_name,
        status,
        base_id=state.get("base_id"),
        experiments=state.get("experiments", 0),
        hypothesis=hypothesis,
    )


def _base_program(ctx: AgentContext, state: AgentState) -> Program:
    recalled = state.get("recalled")
    base = ctx.library.for_trace(recalled.base) if recalled is not None else None
    if base is None:
        raise RuntimeError(f"cannot rebuild the program of base trace {state['base_id']}")
    return base


def _metric(ctx: AgentContext, fingerprint: str) -> float | None:
    """Mean metric of this swarm's runs of a program on this hardware class and budget."""
    return ctx.store.program_metric(
        ctx.task.name, fingerprint, ctx.device.hardware, ctx.budget, swarm_id=ctx.swarm_id
    )


def _no_log_tail(trace: ExperimentPublic) -> ExperimentPublic:
    return trace.model_copy(update={"log_tail": ""})  # keeps checkpoints small


# ---------------------------------------------------------------------------
# recall
# ---------------------------------------------------------------------------


def _done(ctx: AgentContext, state: AgentState) -> str:
    """Why the agent stops now ("" to go on)."""
    done = state.get("experiments", 0)
    if ctx.stop.is_set():
        return "the swarm is stopping"
    if ctx.max_experiments is not None and done >= ctx.max_experiments:
        return f"finished {done} experiments"
    if ctx.out_of_time():
        return "out of time"
    return ""


def recall(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Champion, own base, related traces (failures too), claims, findings; stop if done."""
    ctx = runtime.context
    stop = _done(ctx, state)
    if stop:
        return {"stop_reason": stop}
    task, hw = ctx.task.name, ctx.device.hardware
    base = ctx.store.get_trace(state["base_id"])
    base_metric = _metric(ctx, base.fingerprint)
    # Recall off (a benchmark arm): only this agent's own traces, no shared champion.
    own = None if ctx.recall else ctx.agent_id
    champion = (
        ctx.store.champion(task, hw, ctx.budget, swarm_id=ctx.swarm_id) if ctx.recall else None
    )
    update: dict[str, Any] = {}
    if champion is not None and champion.id != base.id:
        champ_metric = _metric(ctx, champion.fingerprint)
        ahead = champ_metric is not None and better(champ_metric, base_metric, ctx.task.direction)
        if ahead and ctx.library.for_trace(champion) is not None:
            log.info("%s: moves onto the champion %s", ctx.agent_name, champion.id)
            ctx.emit("moved", base_id=champion.id, metric=champ_metric)
            base, base_metric = champion, champ_metric
            update["base_id"] = champion.id
    related: dict[str, ExperimentPublic] = {}
    query = TraceQuery(task=task, parent_id=base.id, agent_id=own, limit=RELATED_BY_BASE)
    for t in ctx.store.query_traces(query).data:
        related[t.id] = t
    findings = []
    text = base.hypothesis or ctx.task.description or ctx.task.name
    hits = ctx.store.search(text, task=task, limit=RELATED_BY_MEANING) if ctx.recall else []
    for hit in hits:
        if hit.experiment is not None and hit.experiment.id != base.id:
            related.setdefault(hit.experiment.id, hit.experiment)
        elif hit.finding is not None:
            findings.append(hit.finding)
    claims = ctx.store.active_claims(task) if ctx.recall else []
    ctx.emit(
        "recall",
        base_id=base.id,
        base_metric=base_metric,
        champion_metric=champion.metric if champion else None,
    )
    update.update(
        base_fingerprint=base.fingerprint,
        base_metric=base_metric,
        champion_id=champion.id if champion else None,
        recalled=Recalled(
            base=_no_log_tail(base),
            champion=_no_log_tail(champion) if champion else None,
            related=[_no_log_tail(t) for t in related.values()],
            findings=findings,
            claims=[c for c in claims if c.agent_id != ctx.agent_id],
        ),
        stop_reason="",
    )
    return update


# ---------------------------------------------------------------------------
# propose
# ---------------------------------------------------------------------------


def propose(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the proposer for one change to the base."""
    ctx = runtime.context
    _status(ctx, "proposing", state)
    ctx.emit("proposing")
    recalled = state.get("recalled")
    assert recalled is not None, "recall runs before propose"
    request = ProposalRequest(
        task=ctx.task,
        agent_id=ctx.agent_id,
        device=ctx.device,
        store=ctx.store,
        base=_base_program(ctx, state),
        base_trace=recalled.base,
        base_metric=state.get("base_metric"),
        champion=recalled.champion,
        related=recalled.related,
        findings=recalled.findings,
        claims=recalled.claims,
        feedback=list(state.get("feedback", [])),
        recall=ctx.recall,
    )
    try:
        proposal = ctx.proposer.propose(request)
    except ProposalInvalid as exc:
        return {
            "proposal": Proposal(hypothesis=exc.hypothesis, edits=[]),
            "proposal_error": exc.reason,
            "raw_output": exc.raw[-4000:],
        }
    except SearchExhausted as exc:
        return {"proposal": None, "stop_reason": f"search exhausted: {exc}"}
    ctx.emit("proposed", hypothesis=proposal.hypothesis)
    return {"proposal": proposal, "proposal_error": "", "raw_output": ""}


# ---------------------------------------------------------------------------
# check: apply, refuse, claim
# ---------------------------------------------------------------------------


def _refused(
    ctx: AgentContext, state: AgentState, reason: str, trace: ExperimentCreate | None = None
) -> dict[str, Any]:
    """The update for a refused proposal (its trace written if given); the reason goes
    back to the proposer."""
    if trace is not None:
        write_trace(ctx.store, trace)
        ran = trace.duration_s is not None
        ctx.emit("recorded", status=trace.status.value, trace_id=trace.id, metric=None, ran=ran)
        log.info("%s: %s refused: %s", ctx.agent_name, trace.status.value, reason)
    return {
        "feedback": [*state.get("feedback", []), reason][-FEEDBACK_KEEP:],
        "refusals": state.get("refusals", 0) + 1,
        "status": trace.status.value if trace is not None else "refused",
        "reason": reason,
        "claim_id": None,
        "candidate": {},
    }


def _unapplied(ctx: AgentContext, state: AgentState, reason: str, text: str) -> dict[str, Any]:
    """Refuse a proposal that never became a program (``invalid``): with no program to
    fingerprint, the refused output's digest names it and its tail is kept as the log."""
    proposal = state.get("proposal")
    trace = refusal(
        ctx.author,
        Status.invalid,
        reason,
        parent_id=state.get("base_id"),
        hypothesis=proposal.hypothesis if proposal else "",
        fingerprint=unapplied_fingerprint(text),
        log_tail=text[-2000:],
    )
    return _refused(ctx, state, reason, trace)


def near_failure(state: AgentState, changes: dict[str, Any]) -> str:
    """A recorded crash/timeout on the same base with (nearly) the same knob changes."""
    recalled = state.get("recalled")
    if not changes or recalled is None:
        return ""
    for t in recalled.related:
        if t.parent_id != state.get("base_id") or t.status not in (Status.crash, Status.timeout):
            continue
        if set(t.knobs) != set(changes):
            continue
        if all(_same_value(t.knobs[name], new) for name, (_, new) in changes.items()):
            return f"trace {t.id} ({t.status.value}: {t.error[:160]})"
    return ""


def _same_value(old_change: Any, new: Any) -> bool:
    """True if knob value ``new`` equals (numbers: within 2% of) the recorded change's."""
    ok = isinstance(old_change, list) and len(old_change) == 2
    prev = old_change[1] if ok else None
    if isinstance(new, bool) or isinstance(prev, bool) or not isinstance(new, int | float):
        return bool(new == prev)
    if not isinstance(prev, int | float):
        return False
    scale = max(abs(prev), abs(new), 1e-12)
    return abs(new - prev) / scale <= NEAR_FAILURE_REL


def _refusal(
    ctx: AgentContext, state: AgentState, candidate: Program, common: dict[str, Any]
) -> dict[str, Any] | None:
    """The refusal of a candidate that already ran or is too close to a failure, or None."""
    proposal = state.get("proposal")
    seen = ctx.store.seen(ctx.task.name, candidate.fingerprint)
    if seen is not None:
        metric = f", {ctx.task.metric_name} {seen.metric:.6g}" if seen.metric is not None else ""
        why = f"this program already ran as trace {seen.id} ({seen.status.value}{metric})"
        trace = refusal(
            ctx.author,
            Status.duplicate,
            why,
            parent_id=state.get("base_id"),
            hypothesis=proposal.hypothesis if proposal else "",
            **common,
        )
        return _refused(ctx, state, why, trace)
    near = near_failure(state, common["knobs"])
    if near:
        return _refused(ctx, state, f"too close to a recorded failure: {near}")
    return None


def _claim(
    ctx: AgentContext, state: AgentState, candidate: Program, common: dict[str, Any]
) -> dict[str, Any]:
    """Claim the candidate for this agent (refused as a duplicate if someone else holds it)."""
    proposal = state.get("proposal")
    hypothesis = proposal.hypothesis if proposal else ""
    try:
        claim = ctx.store.claim(
            ClaimCreate(
                task=ctx.task.name,
                fingerprint=candidate.fingerprint,
                swarm_id=ctx.swarm_id,
                agent_id=ctx.agent_id,
                parent_id=state.get("base_id"),
                hypothesis=hypothesis,
                knobs=common["knobs"],
                ttl_seconds=ctx.timeout + 120,
            )
        )
    except (AlreadyClaimed, AlreadyRan) as exc:
        why = f"refused before the run: {exc}"
        trace = refusal(
            ctx.author,
            Status.duplicate,
            why,
            parent_id=state.get("base_id"),
            hypothesis=hypothesis,
            **common,
        )
        return _refused(ctx, state, why, trace)
    ctx.library.put(candidate)
    return {
        **common,
        "candidate": candidate.as_dict(),
        "claim_id": claim.id,
        "trace_id": new_id(),
        "refusals": 0,
        "status": "claimed",
        "reason": "",
        "outcome": None,
    }


def check(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Apply the edits to the base, fingerprint, refuse duplicates, claim."""
    ctx = runtime.context
    proposal = state.get("proposal")
    if state.get("proposal_error") or proposal is None:
        error = state.get("proposal_error") or "no proposal"
        return _unapplied(
            ctx, state, f"unusable proposal: {error}", state.get("raw_output") or error
        )
    base = _base_program(ctx, state)
    try:
        candidate = apply_edits(base, proposal.edits)
    except EditError as exc:
        text = proposal.model_dump_json()
        return _unapplied(ctx, state, f"invalid edit: {exc.reason}", text)
    common = {
        "fingerprint": candidate.fingerprint,
        "diff": diff(base, candidate),
        "knobs": knob_changes(base, candidate, ctx.task.knobs),
    }
    refused = _refusal(ctx, state, candidate, common)
    return refused if refused is not None else _claim(ctx, state, candidate, common)


# ---------------------------------------------------------------------------
# run, judge, record
# ---------------------------------------------------------------------------


def run(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the candidate in the agent's workspace on its device."""
    ctx = runtime.context
    proposal = state.get("proposal")
    hypothesis = proposal.hypothesis if proposal else ""
    _status(ctx, "running", state, hypothesis)
    ctx.emit("running", hypothesis=hypothesis, started=time.time())
    outcome = ctx.bench.execute(Program.of(state["candidate"]), str(state["trace_id"]))
    return {"outcome": outcome}


def judge_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Status from the run and the base's metric with the noise."""
    ctx = runtime.context
    outcome = state.get("outcome")
    assert outcome is not None, "run comes before judge"
    verdict = judge(
        outcome.result, state.get("base_metric"), ctx.noise, ctx.task.direction, outcome.tampered
    )
    return {"status": verdict.status.value, "reason": verdict.reason}


def record(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Write the trace, release the claim; a keep becomes the agent's base."""
    ctx = runtime.context
    outcome = state.get("outcome")
    assert outcome is not None, "run comes before record"
    proposal = state.get("proposal")
    status = Status(state["status"])
    trace_id = str(state["trace_id"])
    trace = trace_from_run(
        ctx.author,
        outcome,
        Verdict(status, state.get("reason", "")),
        trace_id=trace_id,
        role=Role.experiment,
        parent_id=state.get("base_id"),
        hypothesis=proposal.hypothesis if proposal else "",
        fingerprint=state["fingerprint"],
        diff=state.get("diff", ""),
        knobs=state.get("knobs", {}),
    )
    write_trace(ctx.store, trace)
    ctx.emit("recorded", status=status.value, trace_id=trace_id, metric=trace.metric, ran=True)
    if state.get("claim_id"):
        try:
            ctx.store.release(str(state["claim_id"]))
        except NotFound:
            pass
    update: dict[str, Any] = {
        "experiments": state.get("experiments", 0) + 1,
        "last_trace_id": trace_id,
        "claim_id": None,
        "candidate": {},
        "outcome": None,
        "feedback": [],
    }
    if status == Status.keep:
        update["base_id"] = trace_id
    log.info("%s: %s %s (%s)", ctx.agent_name, status.value, trace_id, state.get("reason", ""))
    _status(ctx, "idle", {**state, **update})  # type: ignore[typeddict-item]
    return update
