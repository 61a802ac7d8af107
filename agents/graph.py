"""One researcher agent as a LangGraph ``StateGraph``::

    recall -> propose -> recall_draft -> check -> [short ->] run -> judge -> record -> recall ...
                 ^            |             |         |              |  ^
                 +--refused---+-------------+         |   candidate  v  | (stage 2)
                                       not promoted:  v            confirm
                                                    recall
    recall_draft: memory searched with the draft (by meaning and by knob moves on the
    base's lineage); a near duplicate of a run or a claim in flight goes back
    refused: near duplicate / duplicate / invalid / too close to a recorded failure
    short (a swarm with a short budget): the candidate runs at the short budget first and
    at the full budget only if promoted (agents.judge.judge_short)
    candidate: a first run that passed the screen (or a suspect one) runs again with
    another seed before the verdict is final (agents.judge)
    record -> remeasure -> recall: a kept program runs rules.remeasure more times first

Memory, proposer, workspace and device reach the nodes through the runtime context
(:class:`agents.context.AgentContext`). Compile with a checkpointer whose serializer is
:func:`agents.state.checkpoint_serde` and give each agent its own ``thread_id``; a killed
swarm then resumes every agent from its last checkpoint.
"""

from __future__ import annotations

from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agents.context import AgentContext
from agents.nodes import (
    check,
    confirm,
    judge_node,
    propose,
    recall,
    recall_draft,
    record,
    remeasure,
    run,
    short,
)
from agents.state import AgentState, InputState


def after_recall(state: AgentState) -> Literal["propose", "__end__"]:
    return "__end__" if state.get("stop_reason") else "propose"


def after_propose(state: AgentState) -> Literal["recall_draft", "__end__"]:
    return "__end__" if state.get("stop_reason") else "recall_draft"


def _refused(state: AgentState, runtime: Runtime[AgentContext]) -> Literal["propose", "__end__"]:
    ctx = runtime.context
    if state.get("refusals", 0) >= ctx.max_refusals:
        return "__end__"
    if ctx.stop.is_set() or ctx.out_of_time():
        return "__end__"
    return "propose"


def after_recall_draft(
    state: AgentState, runtime: Runtime[AgentContext]
) -> Literal["check", "propose", "__end__"]:
    return _refused(state, runtime) if state.get("status") == "near_duplicate" else "check"


def after_check(
    state: AgentState, runtime: Runtime[AgentContext]
) -> Literal["short", "run", "propose", "__end__"]:
    if state.get("claim_id") and state.get("candidate"):
        return "short" if runtime.context.short_budget is not None else "run"
    return _refused(state, runtime)


def after_short(state: AgentState) -> Literal["run", "recall"]:
    return "run" if state.get("short_id") else "recall"


def after_judge(state: AgentState) -> Literal["confirm", "record"]:
    return "confirm" if state.get("pending") else "record"


def after_record(state: AgentState) -> Literal["remeasure", "recall"]:
    # state only: a resume's update_state(as_node="record") runs this without a context
    return "remeasure" if state.get("remeasure_due") else "recall"


builder = StateGraph(AgentState, context_schema=AgentContext, input_schema=InputState)
builder.add_node("recall", recall)
builder.add_node("propose", propose)
builder.add_node("recall_draft", recall_draft)
builder.add_node("check", check)
builder.add_node("short", short)
builder.add_node("run", run)
builder.add_node("judge", judge_node)
builder.add_node("confirm", confirm)
builder.add_node("remeasure", remeasure)
builder.add_node("record", record)
builder.add_edge(START, "recall")
builder.add_conditional_edges("recall", after_recall)
builder.add_conditional_edges("propose", after_propose)
builder.add_conditional_edges("recall_draft", after_recall_draft)
builder.add_conditional_edges("check", after_check)
builder.add_conditional_edges("short", after_short)
builder.add_edge("run", "judge")
builder.add_conditional_edges("judge", after_judge)
builder.add_edge("confirm", "judge")
builder.add_conditional_edges("record", after_record)
builder.add_edge("remeasure", "recall")


def compile_graph(
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph[AgentState, AgentContext, InputState, AgentState]:
    """The agent graph, with ``checkpointer`` (SQLite in a swarm) if given."""
    return builder.compile(checkpointer=checkpointer, name="researcher")


graph = compile_graph()
