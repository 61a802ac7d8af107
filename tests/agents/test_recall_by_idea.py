"""Recall by the idea (issue 15): the agent drafts, then recalls with the draft; a draft that
nearly repeats a recorded run goes back to the proposer with the evidence, recorded
``near_duplicate``; each ablation switch turns off exactly its own part.

Real parts: an embedded store (SQLite + local Chroma) with the real all-MiniLM-L6-v2, the
real graph and nodes, a real task run as a subprocess; the proposer is a scripted
:class:`~agents.proposers.base.Proposer` (the thing under test is the loop around it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from agents import idea
from agents.context import AgentContext
from agents.devices import cpu_devices
from agents.graph import builder
from agents.program import Program, apply_edits, diff
from agents.proposers.base import Proposal
from agents.proposers.prompts import user_prompt
from agents.state import checkpoint_serde
from agents.task import load_task
from memory import MIN_CHAMPION_RUNS, get_store
from memory.models import ExperimentCreate, Role, Status, TraceQuery
from tests.agents.conftest import agent_context, edit_proposal, make_task

SWARM = "idea-test"
OTHER = f"{SWARM}/agent-1"
LR_UP = ("LR = 0.1  # step size", "LR = 0.3  # step size")
END = ("# ---- end knobs ----", "# ---- end knobs ---- (one more layer)")
DEEPER = "add one more transformer layer to make the model deeper"
DEEPER_AGAIN = "Add one more transformer layer so the model is deeper"


@pytest.fixture
def minilm_store(tmp_path: Path, embedder: Any):
    """A real embedded store with the real MiniLM model (meaning matters here)."""
    s = get_store(tmp_path / "memory", embedder=embedder)
    yield s
    s.close()


def _context(tmp_path: Path, store, proposals: list[Proposal], **settings: Any) -> AgentContext:
    return agent_context(tmp_path, store, proposals, SWARM, **settings)


def _baseline_id(store) -> str:
    query = TraceQuery(task="quad", role=[Role.baseline], sort="created_at")
    return str(store.query_traces(query).data[0].id)


def _record(ctx: AgentContext, **fields: Any) -> str:
    """A trace another agent of this swarm recorded on this hardware class and budget."""
    trace = ExperimentCreate(
        task="quad",
        swarm_id=SWARM,
        agent_id=OTHER,
        hardware=ctx.device.hardware,
        device=ctx.device.name,
        metric_name="val_loss",
        budget_s=1.0,
        **fields,
    )
    return ctx.store.add_trace(trace).id


def _graph(**interrupts: Any):
    return builder.compile(checkpointer=InMemorySaver(serde=checkpoint_serde()), **interrupts)


def _config(ctx: AgentContext) -> dict[str, Any]:
    return {"configurable": {"thread_id": ctx.agent_id}}


def _failure(ctx: AgentContext, hypothesis: str = DEEPER, **fields: Any) -> str:
    fields.setdefault("parent_id", _baseline_id(ctx.store))
    return _record(
        ctx,
        fingerprint=f"fp-{len(hypothesis)}-{hypothesis[:8]}",
        status=Status.crash,
        hypothesis=hypothesis,
        error="CUDA out of memory",
        **fields,
    )


def test_a_draft_near_a_recorded_failure_is_sent_back_and_a_different_idea_passes(
    tmp_path, minilm_store
):
    near = edit_proposal(DEEPER_AGAIN, *END)
    other = edit_proposal("raise the learning rate to 0.3", *LR_UP)
    ctx = _context(tmp_path, minilm_store, [near, other], max_experiments=1)
    crashed = _failure(ctx)
    graph = _graph()
    graph.invoke({"base_id": _baseline_id(minilm_store)}, _config(ctx), context=ctx)

    refused = minilm_store.query_traces(
        TraceQuery(task="quad", status=[Status.near_duplicate])
    ).data
    assert len(refused) == 1
    nd = refused[0]
    assert nd.matched_id == crashed and crashed in nd.reason and nd.reason == nd.error
    assert nd.hypothesis == DEEPER_AGAIN and nd.proposer == "fixed"
    assert nd.duration_s is None and nd.agent_id == ctx.agent_id, "refused before any run"
    # the evidence went back to the proposer, and its prompt shows it
    second = ctx.proposer.requests[1]  # type: ignore[attr-defined]
    evidence = [f for f in second.feedback if f"near duplicate of trace {crashed}" in f]
    assert evidence and "CUDA out of memory" in evidence[0] and DEEPER in evidence[0]
    prompt = user_prompt(second)
    assert f"near duplicate of trace {crashed}" in prompt.split("previous answers were refused")[1]
    # the different idea passed and ran
    ran = minilm_store.query_traces(
        TraceQuery(task="quad", agent_id=ctx.agent_id, role=[Role.experiment])
    ).data
    assert [t.hypothesis for t in ran if t.status in (Status.keep, Status.discard)] == [
        "raise the learning rate to 0.3"
    ]
    assert all(t.proposer == "fixed" for t in ran)


def test_refused_drafts_and_re_runs_do_not_hide_the_run_a_draft_repeats(tmp_path, minilm_store):
    ctx = _context(tmp_path, minilm_store, [edit_proposal(DEEPER_AGAIN, *END)], max_experiments=1)
    crashed = _failure(ctx)
    root = _baseline_id(minilm_store)
    for i in range(20):  # earlier refusals of the same words, nearer than the run itself
        _record(ctx, parent_id=root, fingerprint=f"fp-refused-{i}",
                status=Status.near_duplicate, hypothesis=DEEPER_AGAIN)  # fmt: skip
    for i in range(3):  # re-runs repeat an idea's words too
        again = f"re-measure {i} of {DEEPER}"
        _record(ctx, parent_id=crashed, fingerprint=f"fp-rerun-{i}", role=Role.remeasure,
                status=Status.discard, metric=1.0, hypothesis=again)  # fmt: skip
    _graph().invoke({"base_id": root}, _config(ctx), context=ctx)
    refused = minilm_store.query_traces(
        TraceQuery(task="quad", agent_id=ctx.agent_id, status=[Status.near_duplicate])
    ).data
    assert [t.matched_id for t in refused] == [crashed]


def test_a_near_duplicate_is_refused_at_most_tries_times_then_passes(tmp_path, minilm_store):
    drafts = [edit_proposal(DEEPER_AGAIN, *END), edit_proposal(DEEPER_AGAIN, *END)]
    ctx = _context(tmp_path, minilm_store, drafts, max_experiments=1, near_duplicate_tries=1)
    _failure(ctx)
    _graph().invoke({"base_id": _baseline_id(minilm_store)}, _config(ctx), context=ctx)
    statuses = [
        t.status
        for t in minilm_store.query_traces(
            TraceQuery(task="quad", agent_id=ctx.agent_id, role=[Role.experiment])
        ).data
    ]
    assert statuses.count(Status.near_duplicate) == 1
    assert any(s in (Status.keep, Status.discard) for s in statuses), "the insisted draft ran"


def test_the_switch_off_lets_a_near_duplicate_through(tmp_path, minilm_store):
    ctx = _context(
        tmp_path,
        minilm_store,
        [edit_proposal(DEEPER_AGAIN, *END)],
        max_experiments=1,
        refuse_near_duplicates=False,
    )
    crashed = _failure(ctx)
    graph = _graph(interrupt_after=["recall_draft"])
    graph.invoke({"base_id": _baseline_id(minilm_store)}, _config(ctx), context=ctx)
    state = graph.get_state(_config(ctx)).values
    assert state["status"] == "drafted" and state.get("refusals", 0) == 0
    assert crashed in {t.id for t in state["recalled"].related}, "still recalled"
    assert minilm_store.count(TraceQuery(task="quad", status=[Status.near_duplicate])) == 0


def test_a_builtin_draft_is_never_checked_as_a_near_duplicate(tmp_path, minilm_store):
    ctx = _context(tmp_path, minilm_store, [edit_proposal(DEEPER_AGAIN, *END)], max_experiments=1)
    ctx.proposer.name = "builtin"
    _failure(ctx)
    graph = _graph(interrupt_after=["recall_draft"])
    graph.invoke({"base_id": _baseline_id(minilm_store)}, _config(ctx), context=ctx)
    assert graph.get_state(_config(ctx)).values["status"] == "drafted"


def _decoys(ctx: AgentContext, n: int = 10) -> None:
    """Traces of another swarm that the base's own search (its hypothesis: "baseline
    replicate 1: the unmodified program") finds first."""
    for i in range(n):
        ctx.store.add_trace(
            ExperimentCreate(
                task="quad",
                swarm_id="elsewhere",
                role=Role.baseline,
                hardware="other-hw",
                fingerprint=f"decoy-{i}",
                status=Status.keep,
                metric=1.0,
                hypothesis=f"baseline replicate {i + 2}: the unmodified program",
            )
        )


@pytest.mark.parametrize("semantic", [True, False])
def test_recall_searches_with_the_drafts_text(tmp_path, minilm_store, semantic):
    """A failure about depth, built on another base, is recalled for a draft that adds a
    layer -- by the draft's words, not the base's; the semantic switch turns exactly that
    off (the near-duplicate check, another switch, is off here)."""
    ctx = _context(
        tmp_path,
        minilm_store,
        [edit_proposal("add a layer to the network", *END)],
        max_experiments=1,
        refuse_near_duplicates=False,
        semantic_recall=semantic,
    )
    _decoys(ctx)
    other_base = _record(
        ctx, fingerprint="fp-other", status=Status.discard, metric=1.5, hypothesis="x"
    )
    depth = _record(
        ctx,
        parent_id=other_base,
        fingerprint="fp-depth",
        status=Status.crash,
        hypothesis="increase the depth of the network from 8 to 12 transformer layers",
        error="CUDA out of memory",
    )
    graph = _graph(interrupt_after=["recall", "recall_draft"])
    config = _config(ctx)
    graph.invoke({"base_id": _baseline_id(minilm_store)}, config, context=ctx)
    after_recall = {t.id for t in graph.get_state(config).values["recalled"].related}
    assert depth not in after_recall, "the base's own search does not find it"
    graph.invoke(None, config, context=ctx)  # propose, recall_draft
    state = graph.get_state(config).values
    assert state["proposal"].hypothesis == "add a layer to the network"
    assert (depth in {t.id for t in state["recalled"].related}) is semantic


def test_structural_matches_are_same_knobs_same_direction_on_the_lineage(tmp_path, minilm_store):
    ctx = _context(tmp_path, minilm_store, [])
    root = _baseline_id(minilm_store)
    mid = _record(ctx, parent_id=root, fingerprint="fp-mid", status=Status.keep, metric=1.0)
    up = _record(
        ctx,
        parent_id=root,
        fingerprint="fp-up",
        status=Status.discard,
        hypothesis="qq",
        knobs={"LR": [0.1, 0.2]},
    )
    _record(
        ctx,
        parent_id=root,
        fingerprint="fp-down",
        status=Status.discard,
        hypothesis="qq",
        knobs={"LR": [0.1, 0.05]},
    )
    _record(
        ctx,
        parent_id=root,
        fingerprint="fp-two",
        status=Status.discard,
        hypothesis="qq",
        knobs={"LR": [0.1, 0.2], "WIDTH": [16, 32]},
    )
    base = minilm_store.get_trace(mid)
    lineage = idea.lineage_ids(minilm_store, base)
    assert lineage == [mid, root]
    found = idea.structural_matches(minilm_store, "quad", lineage, {"LR": [0.1, 0.3]})
    assert [t.id for t in found] == [up]
    assert idea.same_move({"MODE": ["a", "b"]}, {"MODE": ["c", "b"]})
    assert not idea.same_move({"MODE": ["a", "b"]}, {"MODE": ["a", "c"]})


def test_near_duplicate_rule_numbers_and_knobs_keep_variants_apart(embedder):
    """The structure gate: the embedder sees "0.005 to 0.006" and "0.006 to 0.005" as one
    sentence; knob moves (or, without them, the numbers written) keep them apart."""
    from datetime import UTC, datetime

    def run(i: str, hypothesis: str, knobs: dict[str, Any]) -> Any:
        from memory.models import ExperimentPublic

        return ExperimentPublic(
            id=i,
            task="quad",
            fingerprint=i,
            status=Status.discard,
            hypothesis=hypothesis,
            knobs=knobs,
            created_at=datetime.now(UTC),
        )

    down = run("down", "unembedding LR 0.006 to 0.005", {"UNEMB_LR": [0.006, 0.005]})
    common = {"threshold": idea.DEFAULT_NEAR_DUPLICATE, "metric_name": "val_loss"}
    same = idea.near_duplicate(
        embedder,
        [down],
        [],
        hypothesis="lower the unembedding LR from 0.006 to 0.005",
        knobs={"UNEMB_LR": [0.006, 0.005]},
        **common,
    )
    assert same is not None and same.matched_id == "down" and same.score >= 0.7
    opposite = idea.near_duplicate(
        embedder,
        [down],
        [],
        hypothesis="unembedding LR 0.005 to 0.006",
        knobs={"UNEMB_LR": [0.005, 0.006]},
        **common,
    )
    assert opposite is None
    other_numbers = idea.near_duplicate(
        embedder, [down], [], hypothesis="unembedding LR 0.006 to 0.004", knobs={}, **common
    )
    assert other_numbers is None


def test_insights_switch_turns_off_only_the_insights(tmp_path, minilm_store):
    ctx = _context(tmp_path, minilm_store, [edit_proposal("LR up", *LR_UP)], max_experiments=1)
    root = _baseline_id(minilm_store)
    for i, metric in enumerate((0.9, 0.92, 0.91)):
        _record(
            ctx,
            parent_id=root,
            fingerprint=f"fp-lr-{i}",
            status=Status.keep,
            metric=metric,
            hypothesis=f"raise LR {i}",
            knobs={"LR": [0.1, 0.2 + i / 100]},
            base_metric=1.3,
            base_n=2,
            judged_metric=metric,
            judged_n=2,
            noise_sd=0.01,
            noise_n=2,
        )
    lines = minilm_store.insights("quad", ctx.device.hardware, 1.0).prompt_lines(12)
    assert lines, "the memory made for the test has insights"
    graph = _graph(interrupt_after=["propose"])
    graph.invoke({"base_id": root}, _config(ctx), context=ctx)
    request = ctx.proposer.requests[0]  # type: ignore[attr-defined]
    assert request.insights == lines
    assert "What memory has learned so far" in user_prompt(request)

    off = _context(tmp_path / "off", minilm_store, [edit_proposal("LR up", *LR_UP)], insights=False)
    graph = _graph(interrupt_after=["propose"])
    graph.invoke({"base_id": root}, _config(off), context=off)
    request_off = off.proposer.requests[0]  # type: ignore[attr-defined]
    assert request_off.insights == []
    assert {t.id for t in request_off.related} == {t.id for t in request.related}, "recall same"


@pytest.mark.parametrize("follow", [True, False])
def test_follow_champion_switch(tmp_path, minilm_store, follow):
    ctx = _context(
        tmp_path, minilm_store, [edit_proposal("x", *END)], max_experiments=5,
        follow_champion=follow,
    )  # fmt: skip
    root_id = _baseline_id(minilm_store)
    root = ctx.library.for_trace(minilm_store.get_trace(root_id))
    assert root is not None
    better = apply_edits(root, edit_proposal("LR up", *LR_UP).edits)
    ctx.library.put(better)
    kept = _record(
        ctx,
        parent_id=root_id,
        fingerprint=better.fingerprint,
        diff=diff(root, better),
        status=Status.keep,
        metric=0.1,
        hypothesis="LR up",
    )
    for i in range(2):
        _record(
            ctx,
            role=Role.remeasure,
            parent_id=kept,
            fingerprint=better.fingerprint,
            status=Status.keep,
            metric=0.1 + i / 1000,
            hypothesis="re-measure",
        )
    assert minilm_store.champion("quad", ctx.device.hardware, 1, swarm_id=SWARM).id == kept
    graph = _graph(interrupt_after=["recall"])
    graph.invoke({"base_id": root_id}, _config(ctx), context=ctx)
    state = graph.get_state(_config(ctx)).values
    assert state["champion_id"] == kept, "the champion is recalled either way"
    assert state["base_id"] == (kept if follow else root_id)


def test_run_flags_set_each_switch_and_bad_values_exit_2(capsys):
    from agents.cli import build_parser
    from agents.cli.run import _config

    parser = build_parser()
    args = parser.parse_args(["run"])
    default, _ = _config(args, None)
    assert (default.recall, default.semantic_recall, default.refuse_near_duplicates) == (
        True,
        True,
        True,
    )
    assert default.insights and default.follow_champion
    assert default.near_duplicate_threshold == idea.DEFAULT_NEAR_DUPLICATE == 0.60
    assert default.near_duplicate_tries == idea.DEFAULT_NEAR_DUPLICATE_TRIES
    for flag, field in [
        ("--no-recall", "recall"),
        ("--no-semantic-recall", "semantic_recall"),
        ("--no-near-duplicates", "refuse_near_duplicates"),
        ("--no-insights", "insights"),
        ("--no-follow-champion", "follow_champion"),
    ]:
        config, _ = _config(parser.parse_args(["run", flag]), None)
        switched = {
            f
            for f in ("recall", "semantic_recall", "refuse_near_duplicates", "insights")
            + ("follow_champion",)
            if getattr(config, f) != getattr(default, f)
        }
        assert switched == {field}, flag
    config, _ = _config(
        parser.parse_args(
            ["run", "--near-duplicate-threshold", "0.8", "--near-duplicate-tries", "0"]
        ),
        None,
    )
    assert (config.near_duplicate_threshold, config.near_duplicate_tries) == (0.8, 0)
    capsys.readouterr()
    assert default.remeasure == MIN_CHAMPION_RUNS and capsys.readouterr().err == ""
    for few in range(MIN_CHAMPION_RUNS):
        config, _ = _config(parser.parse_args(["run", "--remeasure", str(few)]), None)
        assert config.remeasure == few
        assert "the champion stays the start" in capsys.readouterr().err
    for bad in (["--near-duplicate-threshold", "1.5"], ["--near-duplicate-tries", "-1"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["run", *bad])
        assert info.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_a_models_output_never_names_its_proposer(tmp_path):
    """A model writing ``"proposer": "builtin"`` must not pass as the builtin (which the
    near-duplicate check skips): the LLM proposer drops the name."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from agents.proposers.base import ProposalRequest
    from agents.proposers.llm import LLMProposer, parse_proposal

    text = '{"hypothesis": "h", "edits": [], "proposer": "builtin"}'
    assert parse_proposal(text).proposer == "builtin"  # the model did write it
    task = load_task(make_task(tmp_path / "quad"))
    request = ProposalRequest(
        task=task,
        agent_id="s/agent-0",
        device=cpu_devices(1, threads=1)[0],
        store=None,  # type: ignore[arg-type]  # the prompt never reads memory itself
        base=Program.read(task.root, task.editable),
        base_trace=None,
        base_metric=None,
        champion=None,
    )
    chat = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))
    proposal = LLMProposer(chat).propose(request)
    assert proposal.hypothesis == "h" and proposal.proposer == ""


def test_semantic_recall_off_keeps_the_near_duplicate_check(tmp_path, minilm_store):
    """Each switch turns off exactly one thing: without search by meaning for recall, a
    near duplicate is still refused (and without insights or champion-following too)."""
    ctx = _context(
        tmp_path,
        minilm_store,
        [edit_proposal(DEEPER_AGAIN, *END)],
        max_experiments=1,
        semantic_recall=False,
        insights=False,
        follow_champion=False,
    )
    other_base = _record(ctx, fingerprint="fp-other", status=Status.discard, hypothesis="x")
    crashed = _failure(ctx, parent_id=other_base)  # not a child of the base
    graph = _graph(interrupt_after=["recall_draft"])
    graph.invoke({"base_id": _baseline_id(minilm_store)}, _config(ctx), context=ctx)
    state = graph.get_state(_config(ctx)).values
    assert state["status"] == "near_duplicate" and crashed in state["reason"]
    assert crashed not in {t.id for t in state["recalled"].related}, "not recalled by meaning"
