"""The agent graph on its own (LangGraph template style): ``agents.graph.builder`` compiled
with a checkpointer and a real :class:`AgentContext` over an embedded store and a tiny task,
driven node by node -- no ``Swarm``."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agents.context import AgentContext
from agents.execute import Outcome
from agents.graph import builder
from agents.proposers.base import Proposal
from agents.state import Recalled, checkpoint_serde
from memory.models import Role, Status, TraceQuery
from tests.agents.conftest import agent_context, edit_proposal

SWARM = "graph-test"
LR_UP = ("LR = 0.1  # step size", "LR = 0.3  # step size")


def _context(tmp_path: Path, store, proposals: list[Proposal], **limits: Any) -> AgentContext:
    return agent_context(tmp_path, store, proposals, SWARM, **limits)


def test_one_iteration_recall_propose_check_run_judge_record(tmp_path, store):
    ctx = _context(tmp_path, store, [edit_proposal("LR up", *LR_UP)], max_experiments=1)
    baseline_id = (
        store.query_traces(TraceQuery(task="quad", role=[Role.baseline], sort="created_at"))
        .data[0]
        .id
    )
    graph = builder.compile(checkpointer=InMemorySaver(serde=checkpoint_serde()))
    config = {"configurable": {"thread_id": ctx.agent_id}}

    graph.invoke({"base_id": baseline_id}, config, context=ctx)

    state = graph.get_state(config).values
    # the run, its confirmation and two re-measures of the kept program
    assert state["stop_reason"] == "finished 4 experiments" and state["experiments"] == 4
    trace = store.get_trace(state["last_trace_id"])
    assert trace.status == Status.keep and trace.parent_id == baseline_id
    again = store.query_traces(TraceQuery(task="quad", parent_id=trace.id, sort="created_at"))
    confirmation, *remeasured = again.data
    assert [t.role for t in again.data] == [Role.confirmation, Role.remeasure, Role.remeasure]
    assert {t.fingerprint for t in again.data} == {trace.fingerprint}
    assert confirmation.status == Status.keep
    assert [t.id for t in remeasured] == [f"r1-{trace.id}", f"r2-{trace.id}"]
    seeds = {trace.seed, confirmation.seed, *(t.seed for t in remeasured)}
    assert len(seeds) == 4, "a new seed each run"
    assert trace.judged_n == 2 and trace.judged_metric == (trace.metric + confirmation.metric) / 2
    assert trace.base_n == 2 and trace.noise_sd == ctx.noise and trace.noise_n == 2
    assert trace.threshold is not None and "mean of its 2 runs" in trace.reason
    # the champion: its two re-measures (the runs no verdict chose) beat the root's replicates
    assert store.champion("quad", ctx.device.hardware, 1, swarm_id=SWARM).id == trace.id
    assert trace.hypothesis == "LR up" and trace.knobs == {"LR": [0.1, 0.3]}
    assert trace.resources["budget_s"] == 1 and trace.resources["log"].endswith(".log")
    assert not Path(trace.resources["log"]).is_absolute(), "no absolute path in memory"
    assert trace.memory_gb == round(12.5 / 1024, 4)
    assert state["base_id"] == trace.id, "a keep becomes the agent's base"
    assert isinstance(state["recalled"], Recalled) and state["recalled"].base.id == baseline_id
    assert store.active_claims("quad") == []
    nodes = [s.next[0] for s in graph.get_state_history(config) if s.next][::-1]
    assert nodes[:7] == ["__start__", "recall", "propose", "recall_draft", "check", "run", "judge"]
    assert nodes[7:11] == ["confirm", "judge", "record", "remeasure"]
    assert nodes[11:] == ["recall"], "then recall finds the limit and ends"
    assert trace.proposer == confirmation.proposer == "fixed", "who proposed it"
    assert all(t.proposer == "" for t in remeasured)
    request = ctx.proposer.requests[0]  # type: ignore[attr-defined]
    assert request.base_trace.id == baseline_id and request.base_metric is not None


def test_a_keep_that_does_not_beat_the_champion_is_not_re_measured(tmp_path, store):
    """Two agents (threads) on one memory: the first keeps LR 0.3 (the optimum) and its
    re-measures make it the champion; the second, on the root and never following the
    champion, keeps LR 0.2 -- better than its base, worse than the champion -- and goes on
    without re-measuring it: it cannot take the title."""
    proposals = [
        edit_proposal("LR up", *LR_UP),
        edit_proposal("LR up a little", LR_UP[0], "LR = 0.2"),
    ]
    ctx = _context(
        tmp_path,
        store,
        proposals,
        max_experiments=4,
        follow_champion=False,
        refuse_near_duplicates=False,  # the two ideas read alike; this is not about that
    )
    baseline_id = (
        store.query_traces(TraceQuery(task="quad", role=[Role.baseline], sort="created_at"))
        .data[0]
        .id
    )
    graph = builder.compile(checkpointer=InMemorySaver(serde=checkpoint_serde()))
    first = {"configurable": {"thread_id": "first"}}
    second = {"configurable": {"thread_id": "second"}}
    graph.invoke({"base_id": baseline_id}, first, context=ctx)
    champion = store.champion("quad", ctx.device.hardware, 1, swarm_id=SWARM)
    assert champion.id == graph.get_state(first).values["last_trace_id"]

    graph.invoke({"base_id": baseline_id}, second, context=ctx)

    state = graph.get_state(second).values
    kept = store.get_trace(state["last_trace_id"])
    assert kept.status == Status.keep and kept.parent_id == baseline_id
    assert kept.hypothesis == "LR up a little"
    children = store.query_traces(TraceQuery(task="quad", parent_id=kept.id)).data
    assert [t.role for t in children] == [Role.confirmation], "no re-measure"
    assert state["experiments"] == 2 and state["base_id"] == kept.id
    nodes = [s.next[0] for s in graph.get_state_history(second) if s.next]
    assert "remeasure" not in nodes
    assert store.champion("quad", ctx.device.hardware, 1, swarm_id=SWARM).id == champion.id


def test_a_refused_proposal_goes_back_to_propose_with_the_reason(tmp_path, store):
    bad = edit_proposal("not in the file", "NOT THERE", "x = 1")
    ctx = _context(tmp_path, store, [bad, edit_proposal("LR up", *LR_UP)], max_experiments=1)
    baseline_id = (
        store.query_traces(TraceQuery(task="quad", role=[Role.baseline], sort="created_at"))
        .data[0]
        .id
    )
    graph = builder.compile(checkpointer=InMemorySaver(serde=checkpoint_serde()))
    config = {"configurable": {"thread_id": ctx.agent_id}}
    graph.invoke({"base_id": baseline_id}, config, context=ctx)
    invalid = store.query_traces(TraceQuery(task="quad", status=[Status.invalid])).data
    assert len(invalid) == 1 and invalid[0].error.startswith("invalid edit:")
    assert invalid[0].duration_s is None, "refused before any run"
    second = ctx.proposer.requests[1]  # type: ignore[attr-defined]
    assert any("does not occur" in reason for reason in second.feedback)


def test_the_sqlite_checkpoint_reads_the_typed_state_back(tmp_path, store, caplog):
    """What a resume relies on: a checkpoint written before ``run`` holds the typed
    models, and a new process's saver reads them back as those models."""
    ctx = _context(tmp_path, store, [edit_proposal("LR up", *LR_UP)], max_experiments=1)
    baseline_id = (
        store.query_traces(TraceQuery(task="quad", role=[Role.baseline], sort="created_at"))
        .data[0]
        .id
    )
    path = tmp_path / "checkpoints.sqlite"
    config = {"configurable": {"thread_id": ctx.agent_id}}
    conn = sqlite3.connect(path, check_same_thread=False)
    graph = builder.compile(
        checkpointer=SqliteSaver(conn, serde=checkpoint_serde()), interrupt_after=["run"]
    )
    graph.invoke({"base_id": baseline_id}, config, context=ctx)
    conn.close()

    caplog.set_level(logging.WARNING)
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn, serde=checkpoint_serde())
    state = builder.compile(checkpointer=saver).get_state(config)
    conn.close()
    assert state.next == ("judge",)
    values = state.values
    assert isinstance(values["recalled"], Recalled) and values["recalled"].base.id == baseline_id
    assert isinstance(values["proposal"], Proposal) and values["proposal"].hypothesis == "LR up"
    outcome = values["outcome"]
    assert isinstance(outcome, Outcome) and outcome.result.status == "ok"
    assert outcome.result.metric is not None and outcome.tampered == []
    assert not [r for r in caplog.records if "msgpack" in r.getMessage().lower()]
