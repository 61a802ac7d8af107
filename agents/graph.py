"""One researcher agent as a LangGraph ``StateGraph``::

    recall -> propose -> check -> run -> judge -> record -> recall ...
                 ^         |
                 +-refused-+   (duplicate / invalid / too close to a recorded failure)

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
from agents.nodes import check, judge_node, propose, recall, record, run
from agents.state import AgentState, InputState


def after_recall(state: AgentState) -> Literal["propose", "__end__"]:
    return "__end__" if state.get("stop_reason") else "propose"


def after_propose(state: AgentState) -> Literal["check", "__end__"]:
    return "__end__" if state.get("stop_reason") else "check"


def after_check(
    state: AgentState, runtime: Runtime[AgentContext]
) -> Literal["run", "propose", "__end__"]:
    if state.get("claim_id") and state.get("candidate"):
        return "run"
    ctx = runtime.context
    if state.get("refusals", 0) >= ctx.max_refusals:
        return "__end__"
    if ctx.stop.is_set() or ctx.out_of_time():
        return "__end__"
    return "propose"


builder = StateGraph(AgentState, context_schema=AgentContext, input_schema=InputState)
builder.add_node("recall", recall)
builder.add_node("propose", propose)
builder.add_node("check", check)
builder.add_node("run", run)
builder.add_node("judge", judge_node)
builder.add_node("record", record)
builder.add_edge(START, "recall")
builder.add_conditional_edges("recall", after_recall)
builder.add_conditional_edges("propose", after_propose)
builder.add_conditional_edges("check", after_check)
builder.add_edge("run", "judge")
builder.add_edge("judge", "record")
builder.add_edge("record", "recall")


def compile_graph(
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph[AgentState, AgentContext, InputState, AgentState]:
    """The agent graph, with ``checkpointer`` (SQLite in a swarm) if given."""
    return builder.compile(checkpointer=checkpointer, name="researcher")


graph = compile_graph()
