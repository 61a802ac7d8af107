"""The state of one researcher agent's graph (checkpointed after every node).

Only plain JSON values live here, so the SQLite checkpointer can always read them back
(a resumed swarm continues from the last checkpoint of each agent's thread).
"""

from __future__ import annotations

from typing import Any, TypedDict


class InputState(TypedDict):
    """What a swarm gives an agent when it starts."""

    base_id: str
    """Trace the agent builds on (at first: the swarm's baseline)."""


class AgentState(InputState, total=False):
    """Everything one iteration carries from node to node."""

    base_fingerprint: str
    """Fingerprint of the base program."""
    base_metric: float | None
    """Mean metric of the base program on this hardware class and budget."""
    champion_id: str | None
    """Best kept trace of the task on this hardware class when last recalled."""
    recalled: dict[str, Any]
    """What recall found: ``base``, ``champion``, ``related``, ``findings``, ``claims``."""
    proposal: dict[str, Any] | None
    """The proposer's output (``hypothesis``, ``edits``) or None if it failed."""
    proposal_error: str
    """Why the proposer's output was unusable ("" if it was usable)."""
    raw_output: str
    """The proposer's raw text when it was unusable (kept in the invalid trace)."""
    feedback: list[str]
    """Why recent proposals were refused; shown to the proposer, newest last."""
    refusals: int
    """Proposals refused in a row since the last run."""
    candidate: dict[str, str]
    """Files of the program about to run (path -> text)."""
    fingerprint: str
    """Fingerprint of the candidate."""
    diff: str
    """Unified diff from the base to the candidate."""
    knobs: dict[str, Any]
    """Knob changes ``{name: [old, new]}``."""
    claim_id: str | None
    """Claim held for the candidate while it runs."""
    trace_id: str | None
    """Id the candidate's trace will have (fixed before the run, so a resume can find it)."""
    started_at: str | None
    """ISO time the run started."""
    outcome: dict[str, Any] | None
    """The run's result (runner fields plus ``tampered``)."""
    status: str
    """The judged status of the current candidate."""
    reason: str
    """Why it got that status."""
    experiments: int
    """Runs this agent finished (keep/discard/crash/timeout/invalid after a run)."""
    last_trace_id: str | None
    """The agent's last recorded trace."""
    stop_reason: str
    """Why the agent stopped ("" while it works)."""
