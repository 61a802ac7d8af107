"""Proposers: turn recalled context into a proposal (hypothesis + edits).

``builtin`` (Optuna TPE over the task's knobs, no LLM) and ``llm`` (any LangChain chat
model) implement :class:`agents.proposers.base.Proposer`.
"""
