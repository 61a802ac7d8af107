"""The nodes of one agent's iteration: recall -> propose -> recall_draft -> check -> run ->
judge -> record (a candidate goes judge -> confirm -> judge -> record: :mod:`agents.judge`;
with a short budget, check -> short -> run when the short run is promoted, else short ->
recall).

Each node reads the state, reaches memory, proposer, workspace and device through the
runtime context, and returns the state keys it changes. ``recall_draft`` (``near_duplicate``)
and ``check`` (``invalid``, ``duplicate``) record refusals themselves, before any device is
spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from statistics import fmean
from typing import Any

from langgraph.runtime import Runtime

from agents import idea
from agents.context import AgentContext
from agents.execute import Outcome
from agents.judge import (
    Noise,
    NoNoise,
    Verdict,
    best_rival,
    clearly_better,
    contends,
    judge_confirmed,
    judge_first,
    judge_replicate,
    judge_short,
    noise_used,
)
from agents.knobs import knob_changes
from agents.program import EditError, Program, apply_edits, diff
from agents.proposers.base import (
    Proposal,
    ProposalAbandoned,
    ProposalInvalid,
    ProposalRequest,
    Proposer,
    SearchExhausted,
    made_by,
)
from agents.proposers.prompts import MAX_INSIGHTS
from agents.runner import run_seed
from agents.state import AgentState, Recalled
from agents.tracing import (
    FEEDBACK_KEEP,
    judged_fields,
    refusal,
    set_agent,
    trace_from_run,
    unapplied_fingerprint,
    write_trace,
)
from memory.base import Evidence
from memory.embed import store_embedder
from memory.errors import AlreadyClaimed, AlreadyRan, NotFound
from memory.insights import programs_built_on, recorded_base
from memory.insights import stale_failures as memory_stale_failures
from memory.models import (
    CRASHED_STATUSES,
    MEASURED_STATUSES,
    RAN_STATUSES,
    ClaimCreate,
    ExperimentCreate,
    ExperimentPublic,
    Role,
    RunStats,
    Status,
    TraceQuery,
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


def _evidence(ctx: AgentContext) -> Evidence:
    """This swarm's measured runs on this hardware and budget, read once: each program's
    stats, the pooled noise and the champion (``Store.evidence``)."""
    return ctx.store.evidence(ctx.task.name, ctx.device.hardware, ctx.budget, swarm_id=ctx.swarm_id)


def _noise(ctx: AgentContext, evidence: Evidence) -> Noise | None:
    """The noise to judge with now: pooled over this swarm's repeated programs on this
    hardware and budget, at least the task's declared floor (``None``: none yet)."""
    try:
        return noise_used(evidence.noise, ctx.rules.noise_floor)
    except NoNoise:
        return None


def _trace_or_none(ctx: AgentContext, trace_id: str) -> ExperimentPublic | None:
    try:
        return ctx.store.get_trace(trace_id)
    except NotFound:
        return None


def stale_failures(
    ctx: AgentContext,
    traces: list[ExperimentPublic],
    champion: RunStats,
    noise: Noise | None,
    evidence: Evidence | None = None,
    *,
    champion_id: str | None = None,
) -> list[str]:
    """Ids of failures in ``traces`` measured on a base the champion now beats by more than
    the noise: "failed on an older base", which a proposer may try again (the one rule,
    ``memory.insights.stale_failures``, with the noise a verdict uses), unless the champion
    (trace ``champion_id``) is built on their program. A failure that did not record its
    base's mean is compared with its parent program's stats in ``evidence`` (read from the
    store when needed and not given)."""
    bases: dict[str, RunStats | None] = {}

    def built_on() -> set[str]:
        crowned = _trace_or_none(ctx, champion_id) if champion_id else None
        return programs_built_on(crowned, lambda i: _trace_or_none(ctx, i))

    def base_of(t: ExperimentPublic) -> RunStats | None:
        nonlocal evidence
        recorded = recorded_base(t)
        if recorded is not None or not t.parent_id:
            return recorded
        if t.parent_id not in bases:
            parent = _trace_or_none(ctx, t.parent_id)
            if parent is None:
                bases[t.parent_id] = None
                return None
            evidence = evidence or _evidence(ctx)
            bases[t.parent_id] = evidence.stats(parent.fingerprint)
        return bases[t.parent_id]

    sd, df, known = (noise.sd, noise.df, noise.floored) if noise is not None else (None, 0, False)
    return memory_stale_failures(
        traces, champion, base_of, ctx.task.direction, sd, df, known=known, built_on=built_on
    )


def _no_log_tail(trace: ExperimentPublic) -> ExperimentPublic:
    return trace.model_copy(update={"log_tail": ""})  # keeps checkpoints small


# ---------------------------------------------------------------------------
# recall
# ---------------------------------------------------------------------------


def _done(ctx: AgentContext, state: Mapping[str, Any]) -> str:
    """Why the agent stops now ("" to go on)."""
    done = state.get("experiments", 0)
    if ctx.stop.is_set():
        return "the swarm is stopping"
    if ctx.max_experiments is not None and done >= ctx.max_experiments:
        return f"finished {done} experiments"
    if ctx.out_of_time():
        return "out of time"
    return ""


def end_reason(ctx: AgentContext, final: Mapping[str, Any]) -> str:
    """Why an agent's graph ended, from its final state: the reason ``recall`` or
    ``propose`` gave, else (a refusal ended it) the refusals in a row and the last one's
    reason, else why it stopped after a refusal (a stopping swarm, its time up)."""
    if final.get("stop_reason"):
        return str(final["stop_reason"])
    refusals = final.get("refusals", 0)
    if refusals and refusals >= ctx.max_refusals:
        last = final.get("reason")
        said = f"{refusals} proposal{'s' if refusals != 1 else ''} refused in a row"
        return said + (f" (the last: {last})" if last else "")
    return _done(ctx, final) or "stopped"


def recall(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Champion, own base, related traces (failures too), claims, findings; stop if done."""
    ctx = runtime.context
    stop = _done(ctx, state)
    if stop:
        return {"stop_reason": stop}
    task = ctx.task.name
    base = ctx.store.get_trace(state["base_id"])
    evidence = _evidence(ctx)  # the iteration's one read of the measured runs
    base_stats = evidence.stats(base.fingerprint)
    noise = _noise(ctx, evidence)
    # Recall off (a benchmark arm): only this agent's own traces, no shared champion.
    own = None if ctx.recall else ctx.agent_id
    champion = evidence.champion if ctx.recall else None
    update: dict[str, Any] = {}
    champ_stats = base_stats
    if champion is not None and champion.id != base.id:
        champ_stats = evidence.stats(champion.fingerprint)
        ahead = clearly_better(champ_stats, base_stats, noise, ctx.task.direction)
        # follow_champion off (an ablation): the champion is shown, never built on
        if ahead and ctx.follow_champion and ctx.library.for_trace(champion) is not None:
            log.info("%s: moves onto the champion %s", ctx.agent_name, champion.id)
            ctx.emit("moved", base_id=champion.id, metric=champ_stats.mean)
            base, base_stats = champion, champ_stats
            update["base_id"] = champion.id
    related: dict[str, ExperimentPublic] = {}
    query = TraceQuery(task=task, parent_id=base.id, agent_id=own, limit=RELATED_BY_BASE)
    for t in ctx.store.query_traces(query).data:
        related[t.id] = t
    findings = []
    text = base.hypothesis or ctx.task.description or ctx.task.name
    semantic = ctx.recall and ctx.semantic_recall
    hits = ctx.store.search(text, task=task, limit=RELATED_BY_MEANING) if semantic else []
    for hit in hits:
        if hit.experiment is not None and hit.experiment.id != base.id:
            related.setdefault(hit.experiment.id, hit.experiment)
        elif hit.finding is not None:
            findings.append(hit.finding)
    claims = ctx.store.active_claims(task) if ctx.recall else []
    best = champ_stats if champ_stats.mean is not None else base_stats
    ctx.emit(
        "recall",
        base_id=base.id,
        base_metric=base_stats.mean,
        champion_metric=champ_stats.mean if champion else None,
    )
    update.update(
        base_fingerprint=base.fingerprint,
        base_metric=base_stats.mean,
        base_n=base_stats.n,
        champion_id=champion.id if champion else None,
        best_metric=best.mean,
        best_n=best.n,
        noise=noise,
        recalled=Recalled(
            base=_no_log_tail(base),
            champion=_no_log_tail(champion) if champion else None,
            related=[_no_log_tail(t) for t in related.values()],
            stale=stale_failures(
                ctx,
                list(related.values()),
                best,
                noise,
                evidence,
                champion_id=champion.id if champion else None,
            ),
            findings=findings,
            claims=[c for c in claims if c.agent_id != ctx.agent_id],
        ),
        near_duplicates=0,
        stop_reason="",
    )
    return update


# ---------------------------------------------------------------------------
# propose
# ---------------------------------------------------------------------------


def _insights(ctx: AgentContext) -> list[str]:
    """What memory has learned of the task on this hardware and budget, as prompt lines
    (``Store.insights``); none with the ``insights`` switch or shared recall off, or for a
    proposer that reads no text (the builtin sampler)."""
    if not (ctx.insights and ctx.recall and ctx.proposer.reads_text):
        return []
    report = ctx.store.insights(ctx.task.name, ctx.device.hardware, ctx.budget)
    return report.prompt_lines(MAX_INSIGHTS)


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
        stale=recalled.stale,
        claims=recalled.claims,
        feedback=list(state.get("feedback", [])),
        recall=ctx.recall,
        budget=ctx.budget,
        insights=_insights(ctx),
        stop=ctx.stop,
    )
    try:
        proposal = ctx.proposer.propose(request)
    except ProposalAbandoned as exc:  # the swarm is stopping: nothing to record
        log.info("%s: proposal abandoned: %s", ctx.agent_name, exc)
        return {"proposal": None, "stop_reason": _done(ctx, state) or "the swarm is stopping"}
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
# recall by the draft: search with the idea, refuse near duplicates
# ---------------------------------------------------------------------------


def _search_traces(
    ctx: AgentContext, text: str, own: str | None
) -> list[tuple[float, ExperimentPublic]]:
    """(score, trace) of the ideas of the task nearest to ``text``, best first: runs of
    an experiment or a seed that ran (``RAN_STATUSES``; only ``own``'s when given). Refused
    drafts and the re-runs of a kept program repeat an idea's words; left in, they would
    push the run a draft repeats out of the ``NEAR_LIMIT`` nearest."""
    hits = ctx.store.search(
        text,
        kinds=("trace",),
        task=ctx.task.name,
        status=RAN_STATUSES,
        limit=idea.NEAR_LIMIT * idea.NEAR_OVERFETCH,
    )
    return [
        (h.score, h.experiment)
        for h in hits
        if h.experiment is not None
        and h.experiment.role in idea.IDEA_ROLES
        and (own is None or h.experiment.agent_id == own)
    ][: idea.NEAR_LIMIT]


def recall_draft(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Recall with the draft (``agents.idea``): traces near its hypothesis and knob changes
    by meaning, and traces on the base's lineage that moved the same knobs the same way,
    join what the proposer sees; a free-form draft that nearly repeats a run or a claim in
    flight is refused (``near_duplicate``, the matched trace named) and goes back to the
    proposer with that evidence, at most ``near_duplicate_tries`` times -- then it passes."""
    ctx = runtime.context
    proposal = state.get("proposal")
    recalled = state.get("recalled")
    passed: dict[str, Any] = {"status": "drafted"}
    if proposal is None or recalled is None or state.get("proposal_error"):
        return passed  # check records an unusable proposal
    name = made_by(proposal, ctx.proposer)
    if name.endswith("builtin"):
        return passed  # a sampled configuration: no text to recall by, never a near duplicate
    base_program = _base_program(ctx, state)
    try:
        candidate = apply_edits(base_program, proposal.edits)
    except EditError:
        return passed  # check records why the edits do not apply
    knobs = knob_changes(base_program, candidate, ctx.task.knobs)
    task = ctx.task.name
    own = None if ctx.recall else ctx.agent_id
    base = recalled.base
    lineage = idea.lineage_ids(ctx.store, base)
    refuse = (
        ctx.refuse_near_duplicates and state.get("near_duplicates", 0) < ctx.near_duplicate_tries
    )
    semantic = ctx.recall and ctx.semantic_recall
    found: dict[str, ExperimentPublic] = {}
    query = idea.draft_text(proposal.hypothesis, knobs)
    by_meaning = _search_traces(ctx, query, own) if semantic else []
    for _, t in by_meaning:
        if t.id != base.id:
            found[t.id] = t
    for t in idea.structural_matches(ctx.store, task, lineage, knobs, agent_id=own):
        found.setdefault(t.id, t)
    known = {t.id for t in recalled.related}
    new = [_no_log_tail(t) for t in found.values() if t.id not in known]
    best = RunStats(mean=state.get("best_metric"), n=state.get("best_n") or 1, sd=None)
    champion_id = state.get("champion_id")
    stale = (
        stale_failures(ctx, new, best, state.get("noise"), champion_id=champion_id) if new else []
    )
    if new:
        recalled = recalled.model_copy(
            update={"related": [*recalled.related, *new], "stale": [*recalled.stale, *stale]}
        )
        passed["recalled"] = recalled
        ctx.emit("recalled_by_draft", traces=len(new))
    if not refuse:
        return passed
    # the check's candidates: the draft's nearest runs (searched above, once, unless
    # semantic recall is off), and the claims in flight
    if not semantic:
        by_meaning = _search_traces(ctx, query, own)
    # the draft's own program, recorded or claimed, is an exact duplicate: ``check``
    # refuses it as ``duplicate`` (or lets a re-run of an outgrown failure through)
    same = candidate.fingerprint
    runs = idea.candidate_runs(
        [t for _, t in by_meaning if t.fingerprint != same],
        lineage=lineage,
        base_fingerprint=base.fingerprint,
        hardware=ctx.device.hardware,
        budget=ctx.budget,
        stale=set(recalled.stale),
    )
    others = [
        c
        for c in ctx.store.active_claims(task)
        if c.agent_id != ctx.agent_id and c.fingerprint != same
    ]
    claims = idea.candidate_claims(
        others if ctx.recall else [], hardware=ctx.device.hardware, budget=ctx.budget
    )
    near = idea.near_duplicate(
        store_embedder(ctx.store),
        runs,
        claims,
        hypothesis=proposal.hypothesis,
        knobs=knobs,
        threshold=ctx.near_duplicate_threshold,
        metric_name=ctx.task.metric_name,
    )
    if near is None:
        return passed
    trace = refusal(
        ctx.author,
        Status.near_duplicate,
        near.why,
        parent_id=base.id,
        hypothesis=proposal.hypothesis,
        fingerprint=candidate.fingerprint,
        diff=diff(base_program, candidate),
        knobs=knobs,
        proposer=name,
        matched_id=near.matched_id,
    )
    refused = _refused(ctx, state, near.why, trace)
    near_count = state.get("near_duplicates", 0) + 1
    return {**passed, **refused, "near_duplicates": near_count}


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
        proposer=made_by(proposal, ctx.proposer),
    )
    return _refused(ctx, state, reason, trace)


def near_failure(state: AgentState, changes: dict[str, Any]) -> str:
    """A recorded crash/timeout on the same base with (nearly) the same knob changes (a
    failure the champion has outgrown -- stale -- does not count)."""
    recalled = state.get("recalled")
    if not changes or recalled is None:
        return ""
    for t in recalled.related:
        if t.parent_id != state.get("base_id") or t.status not in CRASHED_STATUSES:
            continue
        if t.id in recalled.stale:
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


def _already_ran(
    ctx: AgentContext, state: AgentState, candidate: Program, common: dict[str, Any]
) -> dict[str, Any] | None:
    """The ``duplicate`` refusal of a candidate memory says already ran here
    (``Store.seen``, with the swarm's short budget), or None."""
    seen = ctx.store.seen(
        ctx.task.name,
        candidate.fingerprint,
        hardware=ctx.device.hardware,
        budget=ctx.budget,
        short_budget=ctx.short_budget,
    )
    if seen is None:
        return None
    metric = f", {ctx.task.metric_name} {seen.metric:.6g}" if seen.metric is not None else ""
    how = f"short run at {seen.budget_s or 0:g} s: " if seen.role == Role.short else ""
    why = f"this program already ran as trace {seen.id} ({how}{seen.status.value}{metric})"
    return _duplicate(ctx, state, why, common)


def _duplicate(
    ctx: AgentContext, state: AgentState, why: str, common: dict[str, Any]
) -> dict[str, Any]:
    """Refuse the candidate as a ``duplicate`` for ``why``, with its refusal trace."""
    proposal = state.get("proposal")
    trace = refusal(
        ctx.author,
        Status.duplicate,
        why,
        parent_id=state.get("base_id"),
        hypothesis=proposal.hypothesis if proposal else "",
        proposer=made_by(proposal, ctx.proposer),
        **common,
    )
    return _refused(ctx, state, why, trace)


def _refusal(
    ctx: AgentContext, state: AgentState, candidate: Program, common: dict[str, Any]
) -> dict[str, Any] | None:
    """The refusal of a candidate that already ran or is too close to a failure, or None."""
    refused = _already_ran(ctx, state, candidate, common)
    if refused is not None:
        return refused
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
                hardware=ctx.device.hardware,
                budget_s=ctx.budget,
                # held through the run and its confirmation
                ttl_seconds=2 * ctx.timeout + 120,
            )
        )
    except (AlreadyClaimed, AlreadyRan) as exc:
        return _duplicate(ctx, state, f"refused before the run: {exc}", common)
    if ctx.short_budget is not None:
        # the claim's AlreadyRan checks the full budget only: a short run of this program
        # recorded after the check above and before its agent released the claim just
        # taken is seen now (its agent records it before it releases)
        refused = _already_ran(ctx, state, candidate, common)
        if refused is not None:
            ctx.store.release(claim.id)
            return refused
    ctx.library.put(candidate)
    return {
        **common,
        "candidate": candidate.as_dict(),
        "claim_id": claim.id,
        "trace_id": new_id(),
        "refusals": 0,
        "near_duplicates": 0,
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


def candidate_fields(state: AgentState | dict[str, Any], proposer: Proposer) -> dict[str, Any]:
    """What every run of the claimed candidate records of it (its short run, its run, a
    cut-off one found on resume): base, hypothesis, fingerprint, diff, knob moves, and who
    proposed it (``proposer``: the agent's)."""
    proposal = state.get("proposal")
    return {
        "parent_id": state.get("base_id"),
        "hypothesis": proposal.hypothesis if proposal is not None else "",
        "fingerprint": state.get("fingerprint", ""),
        "diff": state.get("diff", ""),
        "knobs": state.get("knobs", {}),
        "proposer": made_by(proposal, proposer),
    }


def short_id(trace_id: str) -> str:
    """The id of the short run of the candidate whose full run will be ``trace_id`` (fixed,
    so a resumed agent never runs it twice)."""
    return f"s-{trace_id}"


def short_rung(ctx: AgentContext, budget: float, but: str) -> list[float]:
    """The metrics of every short run of the task at ``budget`` on this hardware class
    that produced one (any swarm's of this installation: later swarms reuse the rung;
    never a record written with a ``source``, which is evidence), except trace ``but``."""
    runs = ctx.store.every_trace(
        TraceQuery(
            task=ctx.task.name,
            role=[Role.short],
            status=list(MEASURED_STATUSES),
            hardware=ctx.device.hardware,
            budget_s=budget,
            trusted=True,
        )
    )
    return [t.metric for t in runs if t.id != but and t.metric is not None]


def short(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the candidate at the swarm's short budget and decide whether it runs at the
    full budget (:func:`agents.judge.judge_short`); the short run is a trace of its own
    (role ``short``, parent: the base). Promoted: on to ``run``, whose trace will name this
    one. Not promoted (or failed): the claim is released and the iteration ends here."""
    ctx = runtime.context
    budget = ctx.short_budget
    assert budget is not None, "the short node runs only with a short budget"
    fields = candidate_fields(state, ctx.proposer)
    hypothesis = fields["hypothesis"]
    run_id = short_id(str(state["trace_id"]))
    try:
        trace: ExperimentPublic | ExperimentCreate = ctx.store.get_trace(run_id)  # a resume
    except NotFound:
        _status(ctx, "running", state, f"short run: {hypothesis}")
        ctx.emit("running", hypothesis=f"short run: {hypothesis}", started=time.time())
        outcome = ctx.bench.execute(
            Program.of(state["candidate"]), run_id, seed=run_seed(run_id), budget=budget
        )
        rung = short_rung(ctx, budget, run_id)
        verdict = judge_short(outcome.result, rung, ctx.task.direction, ctx.rules, outcome.tampered)
        trace = trace_from_run(
            replace(ctx.author, budget=budget),
            outcome,
            verdict,
            trace_id=run_id,
            role=Role.short,
            **fields,
        )
        write_trace(ctx.store, trace)
    ran = trace.status != Status.interrupted
    ctx.emit("recorded", status=trace.status.value, trace_id=run_id, metric=trace.metric, ran=ran)
    log.info("%s: short run %s: %s (%s)", ctx.agent_name, run_id, trace.status.value, trace.reason)
    done = state.get("experiments", 0) + ran
    if trace.status == Status.keep and not ctx.stop.is_set():
        return {"short_id": run_id, "experiments": done}
    if state.get("claim_id"):
        try:
            ctx.store.release(str(state["claim_id"]))
        except NotFound:
            pass
    update: dict[str, Any] = {
        "short_id": None,
        "experiments": done,
        "last_trace_id": run_id,
        "claim_id": None,
        "candidate": {},
        "outcome": None,
        "status": trace.status.value,
        "reason": trace.reason,
        "feedback": [],
        "remeasure_due": False,
    }
    _status(ctx, "idle", {**state, **update})  # type: ignore[typeddict-item]
    return update


def run(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the candidate in the agent's workspace on its device (seed from its trace id)."""
    ctx = runtime.context
    proposal = state.get("proposal")
    hypothesis = proposal.hypothesis if proposal else ""
    _status(ctx, "running", state, hypothesis)
    ctx.emit("running", hypothesis=hypothesis, started=time.time())
    trace_id = str(state["trace_id"])
    outcome = ctx.bench.execute(Program.of(state["candidate"]), trace_id, seed=run_seed(trace_id))
    return {"outcome": outcome, "confirm_id": None, "confirm_outcome": None}


def confirm(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the candidate again with another seed (its confirmation run)."""
    ctx = runtime.context
    proposal = state.get("proposal")
    hypothesis = f"confirming: {proposal.hypothesis if proposal else ''}"
    _status(ctx, "running", state, hypothesis)
    ctx.emit("running", hypothesis=hypothesis, started=time.time())
    confirm_id = state.get("confirm_id") or new_id()
    outcome = ctx.bench.execute(
        Program.of(state["candidate"]), confirm_id, seed=run_seed(confirm_id)
    )
    return {"confirm_id": confirm_id, "confirm_outcome": outcome}


def _verdict_state(verdict: Verdict) -> dict[str, Any]:
    """A verdict as checkpointable state (what the trace will record)."""
    return {
        "status": verdict.status.value,
        "reason": verdict.reason,
        "judged": judged_fields(verdict),
    }


def judge_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The verdict (:mod:`agents.judge`): stage 1 after the run -- a failure, a discard or a
    pending candidate -- and stage 2 after the confirmation run, both against the base's
    mean and the noise that recall read (no read of memory here)."""
    ctx = runtime.context
    outcome = state.get("outcome")
    assert outcome is not None, "run comes before judge"
    base = RunStats(mean=state.get("base_metric"), n=state.get("base_n") or 0, sd=None)
    # recall's noise; a checkpoint written before recall kept it: measured now
    noise = state["noise"] if "noise" in state else _noise(ctx, _evidence(ctx))
    direction = ctx.task.direction
    second = state.get("confirm_outcome")
    if second is None:
        verdict = judge_first(outcome.result, base, noise, direction, ctx.rules, outcome.tampered)
        return {**_verdict_state(verdict), "pending": verdict.pending}
    first, again = judge_confirmed(
        outcome.result, second.result, base, noise, direction, ctx.rules, second.tampered
    )
    confirmation = _verdict_state(again)
    return {
        **_verdict_state(first),
        "pending": False,
        "confirm_status": confirmation["status"],
        "confirm_reason": confirmation["reason"],
    }


def record(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Write the trace (and its confirmation's), release the claim; a keep becomes the
    agent's base."""
    ctx = runtime.context
    outcome = state.get("outcome")
    assert outcome is not None, "run comes before record"
    fields = candidate_fields(state, ctx.proposer)
    hypothesis = fields["hypothesis"]
    status = Status(state["status"])
    trace_id = str(state["trace_id"])
    trace = trace_from_run(
        ctx.author,
        outcome,
        Verdict(status, state.get("reason", "")),
        trace_id=trace_id,
        role=Role.experiment,
        judged=state.get("judged", {}),
        short_id=state.get("short_id") or "",
        **fields,
    )
    write_trace(ctx.store, trace)
    runs = 1
    second = state.get("confirm_outcome")
    confirm_id = state.get("confirm_id")
    if second is not None and confirm_id:
        again = trace_from_run(
            ctx.author,
            second,
            Verdict(Status(state["confirm_status"]), state.get("confirm_reason", "")),
            trace_id=confirm_id,
            role=Role.confirmation,
            parent_id=trace_id,
            hypothesis=f"confirmation of {trace_id}: {hypothesis}",
            fingerprint=fields["fingerprint"],
            judged=state.get("judged", {}),
            proposer=fields["proposer"],
        )
        write_trace(ctx.store, again)
        runs = 2
    ctx.emit("recorded", status=status.value, trace_id=trace_id, metric=trace.metric, ran=True)
    if state.get("claim_id"):
        try:
            ctx.store.release(str(state["claim_id"]))
        except NotFound:
            pass
    update: dict[str, Any] = {
        "experiments": state.get("experiments", 0) + runs,
        "last_trace_id": trace_id,
        "claim_id": None,
        "candidate": {},
        "outcome": None,
        "confirm_id": None,
        "confirm_outcome": None,
        "short_id": None,
        "feedback": [],
    }
    if status == Status.keep:
        update["base_id"] = trace_id
    due = status == Status.keep and ctx.rules.remeasure > 0
    judged = [outcome, second]
    update["remeasure_due"] = due and _contender(ctx, trace_id, state["fingerprint"], judged)
    log.info("%s: %s %s (%s)", ctx.agent_name, status.value, trace_id, state.get("reason", ""))
    _status(ctx, "idle", {**state, **update})  # type: ignore[typeddict-item]
    return update


def _contender(
    ctx: AgentContext, trace_id: str, fingerprint: str, runs: list[Outcome | None]
) -> bool:
    """Whether the program (``fingerprint``) just kept as ``trace_id`` is re-measured: it
    contends for the title (``agents.judge.contends``: the mean of its ``runs``, its first
    run and its confirmation, beats that of every other program measured at least twice)."""
    if not ctx.recall:  # recall off (a benchmark arm): no shared evidence to compare with
        return True
    kept = [o.result.metric for o in runs if o is not None and o.result.metric is not None]
    programs = _evidence(ctx).programs
    rival = best_rival((s for f, s in programs.items() if f != fingerprint), ctx.task.direction)
    if contends(kept, rival, ctx.task.direction):
        return True
    assert rival is not None and rival.mean is not None  # contends() is True otherwise
    why = (
        f"kept {trace_id} is not re-measured: the mean of its runs {fmean(kept):.6g} does "
        f"not beat {rival.mean:.6g}, the best mean of a program measured at least twice"
    )
    log.info("%s: %s", ctx.agent_name, why)
    return False


def remeasure_id(trace_id: str, number: int) -> str:
    """The id of re-measure run ``number`` (from 1) of kept trace ``trace_id`` (fixed, so a
    resumed agent never runs one twice; the prefix keeps it apart from the kept trace's id
    where ids are shown shortened)."""
    return f"r{number}-{trace_id}"


def remeasure(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run a newly kept program ``rules.remeasure`` more times with fresh seeds (role
    ``remeasure``, parent: the kept trace), so the base's mean is not only its two selected
    runs; only these runs can make it the champion (``memory.models.champion_of``)."""
    ctx = runtime.context
    kept = ctx.store.get_trace(str(state["last_trace_id"]))
    program = ctx.library.for_trace(kept)
    if program is None:
        raise RuntimeError(f"cannot rebuild the program of kept trace {kept.id}")
    done = 0
    for number in range(1, ctx.rules.remeasure + 1):
        run_id = remeasure_id(kept.id, number)
        try:
            ctx.store.get_trace(run_id)
            continue  # recorded before a resume
        except NotFound:
            pass
        if ctx.stop.is_set():
            break
        hypothesis = f"re-measure {number} of {kept.id} (now a base): {kept.hypothesis}"
        _status(ctx, "running", state, hypothesis)
        ctx.emit("running", hypothesis=hypothesis, started=time.time())
        outcome = ctx.bench.execute(program, run_id, seed=run_seed(run_id))
        verdict = judge_replicate(outcome.result, outcome.tampered)
        trace = trace_from_run(
            ctx.author,
            outcome,
            verdict,
            trace_id=run_id,
            role=Role.remeasure,
            parent_id=kept.id,
            hypothesis=hypothesis,
            fingerprint=kept.fingerprint,
        )
        write_trace(ctx.store, trace)
        ran = verdict.status != Status.interrupted
        ctx.emit(
            "recorded", status=verdict.status.value, trace_id=run_id, metric=trace.metric, ran=ran
        )
        done += ran
    update: dict[str, Any] = {
        "experiments": state.get("experiments", 0) + done,
        "remeasure_due": False,
    }
    _status(ctx, "idle", {**state, **update})  # type: ignore[typeddict-item]
    return update
