"""The nodes of one agent's iteration: recall -> propose -> check -> run -> judge -> record.

Each node reads the state, reaches memory, proposer, workspace and device through the
runtime context, and returns the state keys it changes. ``check`` records refusals
(``invalid``, ``duplicate``) itself, before any device is spent.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from agents.context import AgentContext
from agents.judge import judge
from agents.knobs import knob_changes
from agents.library import champion_for, metric_of
from agents.program import Edit, EditError, Program, apply_edits, diff
from agents.proposers.base import ProposalInvalid, ProposalRequest, SearchExhausted
from agents.records import (
    FEEDBACK_KEEP,
    dump,
    load,
    near_failure,
    now,
    refuse,
    refuse_unapplied,
    set_agent,
    write_trace,
)
from agents.runner import RunResult, run_program
from agents.state import AgentState
from memory.errors import AlreadyClaimed, AlreadyRan, NotFound
from memory.models import (
    ClaimCreate,
    ExperimentPublic,
    Status,
    TraceQuery,
    new_id,
)

log = logging.getLogger(__name__)

RELATED_BY_BASE = 12
RELATED_BY_MEANING = 8


# ---------------------------------------------------------------------------
# recall
# ---------------------------------------------------------------------------


def recall(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Champion, own base, related traces (failures too), claims, findings; stop if done."""
    ctx = runtime.context
    done = state.get("experiments", 0)
    if ctx.stop.is_set():
        return {"stop_reason": "the swarm is stopping"}
    if ctx.max_experiments is not None and done >= ctx.max_experiments:
        return {"stop_reason": f"finished {done} experiments"}
    if ctx.out_of_time():
        return {"stop_reason": "out of time"}
    task, hw = ctx.task.name, ctx.device.hardware
    base = ctx.store.get_trace(state["base_id"])
    base_metric = metric_of(ctx.store, task, base.fingerprint, hw, ctx.budget)
    # Recall off (a benchmark arm): only this agent's own traces, no shared champion.
    own = None if ctx.recall else ctx.agent_id
    champion = champion_for(ctx.store, task, hw, ctx.budget, agent_id=own)
    update: dict[str, Any] = {}
    if champion is not None and champion.id != base.id:
        champ_metric = metric_of(ctx.store, task, champion.fingerprint, hw, ctx.budget)
        better = champ_metric is not None and (
            base_metric is None or ctx.task.better(champ_metric, base_metric)
        )
        if better and ctx.library.for_trace(champion) is not None:
            log.info("%s: moves onto the champion %s", ctx.agent_name, champion.id)
            ctx.emit("moved", base_id=champion.id, metric=champ_metric)
            base, base_metric = champion, champ_metric
            update["base_id"] = champion.id
    related: dict[str, ExperimentPublic] = {}
    for t in ctx.store.query_traces(
        TraceQuery(task=task, parent_id=base.id, agent_id=own, limit=RELATED_BY_BASE)
    ).data:
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
        recalled={
            "base": dump(base),
            "champion": dump(champion),
            "related": [dump(t) for t in related.values()],
            "findings": [f.model_dump(mode="json") for f in findings],
            "claims": [c.model_dump(mode="json") for c in claims if c.agent_id != ctx.agent_id],
        },
        stop_reason="",
    )
    return update


# ---------------------------------------------------------------------------
# propose
# ---------------------------------------------------------------------------


def propose(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the proposer for one change to the base."""
    from memory.models import ClaimPublic, FindingPublic

    ctx = runtime.context
    set_agent(ctx, "proposing", state)
    ctx.emit("proposing")
    recalled = state.get("recalled", {})
    base_trace = load(recalled.get("base"))
    champion = load(recalled.get("champion"))
    base = ctx.library.for_trace(base_trace) if base_trace else None
    if base is None:
        raise RuntimeError(f"cannot rebuild the program of base trace {state['base_id']}")
    request = ProposalRequest(
        task=ctx.task,
        agent_id=ctx.agent_id,
        device=ctx.device,
        store=ctx.store,
        root=ctx.library.root,
        base=base,
        base_trace=base_trace,
        base_metric=state.get("base_metric"),
        champion=champion,
        champion_program=ctx.library.for_trace(champion) if champion else None,
        related=[ExperimentPublic.model_validate(t) for t in recalled.get("related", [])],
        findings=[FindingPublic.model_validate(f) for f in recalled.get("findings", [])],
        claims=[ClaimPublic.model_validate(c) for c in recalled.get("claims", [])],
        feedback=list(state.get("feedback", [])),
        recall=ctx.recall,
    )
    try:
        proposal = ctx.proposer.propose(request)
    except ProposalInvalid as exc:
        return {
            "proposal": {"hypothesis": exc.hypothesis, "edits": []},
            "proposal_error": exc.reason,
            "raw_output": exc.raw[-4000:],
        }
    except SearchExhausted as exc:
        return {"proposal": None, "stop_reason": f"search exhausted: {exc}"}
    ctx.emit("proposed", hypothesis=proposal.hypothesis)
    return {"proposal": proposal.model_dump(), "proposal_error": "", "raw_output": ""}


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


def check(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Apply the edits to the base, fingerprint, refuse duplicates, claim."""
    ctx = runtime.context
    proposal = state.get("proposal") or {}
    raw = state.get("raw_output", "")
    if state.get("proposal_error"):
        reason = f"unusable proposal: {state['proposal_error']}"
        return refuse_unapplied(ctx, state, reason, raw or state["proposal_error"])
    base_trace = load(state.get("recalled", {}).get("base"))
    base = ctx.library.for_trace(base_trace) if base_trace else None
    if base is None:
        raise RuntimeError(f"cannot rebuild the program of base trace {state['base_id']}")
    edits = [Edit.model_validate(e) for e in proposal.get("edits", [])]
    try:
        candidate = apply_edits(base, edits)
    except EditError as exc:
        text = json.dumps(proposal, sort_keys=True)
        return refuse_unapplied(ctx, state, f"invalid edit: {exc.reason}", text)
    fp = candidate.fingerprint
    changes = knob_changes(base, candidate, ctx.task.knobs)
    patch = diff(base, candidate)
    seen = ctx.store.seen(ctx.task.name, fp)
    common = {"fingerprint": fp, "diff": patch, "knobs": changes}
    if seen is not None:
        metric = f", {ctx.task.metric_name} {seen.metric:.6g}" if seen.metric is not None else ""
        why = f"this program already ran as trace {seen.id} ({seen.status.value}{metric})"
        return refuse(ctx, state, Status.duplicate, why, **common)
    near = near_failure(ctx, state, changes)
    if near:
        feedback = [*state.get("feedback", []), f"too close to a recorded failure: {near}"]
        return {
            "feedback": feedback[-FEEDBACK_KEEP:],
            "refusals": state.get("refusals", 0) + 1,
            "status": "refused",
            "reason": near,
            "candidate": {},
            "claim_id": None,
        }
    trace_id = new_id()
    try:
        claim = ctx.store.claim(
            ClaimCreate(
                task=ctx.task.name,
                fingerprint=fp,
                swarm_id=ctx.swarm_id,
                agent_id=ctx.agent_id,
                parent_id=state.get("base_id"),
                hypothesis=proposal.get("hypothesis", ""),
                knobs=changes,
                ttl_seconds=ctx.timeout + 120,
            )
        )
    except (AlreadyClaimed, AlreadyRan) as exc:
        return refuse(ctx, state, Status.duplicate, f"refused before the run: {exc}", **common)
    ctx.library.put(candidate)
    return {
        **common,
        "candidate": candidate.as_dict(),
        "claim_id": claim.id,
        "trace_id": trace_id,
        "refusals": 0,
        "status": "claimed",
        "reason": "",
        "outcome": None,
    }


# ---------------------------------------------------------------------------
# run, judge, record
# ---------------------------------------------------------------------------


def run(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Materialise the candidate in the workspace and run it on the agent's device."""
    ctx = runtime.context
    hypothesis = (state.get("proposal") or {}).get("hypothesis", "")
    set_agent(ctx, "running", state, hypothesis)
    ctx.emit("running", hypothesis=hypothesis, started=time.time())
    ws = ctx.workspace
    ws.restore_protected()
    ws.materialise(Program.of(state["candidate"]))
    started = now()
    result: RunResult = run_program(
        ctx.task,
        ws.path,
        ctx.device,
        ctx.budget,
        ctx.logs_dir / f"{state['trace_id']}.log",
        stop=ctx.stop,
        on_start=ws.write_pidfile,
        python=ctx.python,
    )
    ws.clear_pidfile()
    tampered = ws.tampered()
    if tampered:
        log.warning("%s: run touched protected files %s; restoring", ctx.agent_name, tampered)
        ws.restore_protected()
    outcome = {
        "status": result.status,
        "returncode": result.returncode,
        "metric": result.metric,
        "summary": result.summary,
        "duration_s": result.duration_s,
        "log_tail": result.log_tail,
        "error": result.error,
        "log_path": result.log_path,
        "tampered": tampered,
    }
    return {"outcome": outcome, "started_at": started.isoformat()}


def judge_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Status from the run and the base's metric with the noise."""
    ctx = runtime.context
    o = state.get("outcome") or {}
    result = RunResult(
        status=o.get("status", "crash"),
        returncode=o.get("returncode"),
        metric=o.get("metric"),
        error=o.get("error", ""),
    )
    verdict = judge(
        result, state.get("base_metric"), ctx.noise, ctx.task.direction, o.get("tampered", [])
    )
    return {"status": verdict.status.value, "reason": verdict.reason}


def record(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Write the trace, release the claim; a keep becomes the agent's base."""
    ctx = runtime.context
    o = state.get("outcome") or {}
    status = Status(state["status"])
    summary = o.get("summary") or {}
    peak_mb = summary.get("peak_memory_mb")
    started = datetime.fromisoformat(state["started_at"]) if state.get("started_at") else None
    trace_id = write_trace(
        ctx,
        state,
        status,
        id=state["trace_id"],
        fingerprint=state["fingerprint"],
        diff=state.get("diff", ""),
        knobs=state.get("knobs", {}),
        metric=o.get("metric"),
        memory_gb=round(peak_mb / 1024, 4) if isinstance(peak_mb, int | float) else None,
        resources={**summary, "returncode": o.get("returncode"), "log_path": o.get("log_path")},
        log_tail=o.get("log_tail", ""),
        error="" if status in (Status.keep, Status.discard) else state.get("reason", ""),
        started_at=started,
        finished_at=now(),
        duration_s=o.get("duration_s"),
    )
    if state.get("claim_id"):
        try:
            ctx.store.release(state["claim_id"])
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
    set_agent(ctx, "idle", {**state, **update})
    return update
