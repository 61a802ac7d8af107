"""Proposers: turn recalled context into a proposal (hypothesis + edits).

``builtin`` (Optuna TPE over the task's knobs, no LLM), ``llm`` (any LangChain chat
model) and ``hybrid`` (the LLM for structural changes, the builtin tuning the knobs in
between, ``agents.proposers.hybrid``) implement :class:`agents.proposers.base.Proposer`.
"""
