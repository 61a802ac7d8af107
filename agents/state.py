"""The state of one researcher agent's graph (checkpointed after every node).

Values are plain JSON or the typed models below (:class:`Recalled`, the proposer's
:class:`~agents.proposers.base.Proposal`, :class:`~agents.execute.Outcome`, the judge's
:class:`~agents.judge.Noise`). The checkpointer must read them back on a resume:
:func:`checkpoint_serde` is the serializer that allows exactly these model types, and
nothing else, when a checkpoint is loaded.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from agents.execute import Outcome
from agents.judge import Noise
from agents.proposers.base import Proposal
from agents.runner import RunResult
from memory.models import ClaimPublic, ExperimentPublic, FindingPublic, Role, Status


class Recalled(BaseModel):
    """What ``recall`` found for one proposal."""

    base: ExperimentPublic
    """The trace the agent builds on."""
    champion: ExperimentPublic | None = None
    """This swarm's champion on this hardware class and budget (Store.champion)."""
    related: list[ExperimentPublic] = []
    """Traces near the base: its children (failures too) and similar ones by meaning; after
    a draft, also the traces recalled by it (by meaning and by structure)."""
    stale: list[str] = []
    """Ids of related failures measured on a base the champion now beats by more than the
    noise ("failed on an older base": a proposer may try them again)."""
    findings: list[FindingPublic] = []
    """Prior findings similar to the base's hypothesis."""
    claims: list[ClaimPublic] = []
    """Programs other agents are running right now."""


# Model and enum types a checkpoint may hold (loaded by name on a resume).
CHECKPOINT_TYPES: tuple[type, ...] = (
    Recalled,
    Proposal,
    Outcome,
    RunResult,
    ExperimentPublic,
    FindingPublic,
    ClaimPublic,
    Noise,
    Status,
    Role,
)


def checkpoint_serde() -> JsonPlusSerializer:
    """The checkpoint serializer: JSON-like msgpack, loading only :data:`CHECKPOINT_TYPES`."""
    return JsonPlusSerializer(
        allowed_msgpack_modules=[(t.__module__, t.__name__) for t in CHECKPOINT_TYPES]
    )


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
    base_n: int
    """Runs behind ``base_metric``."""
    champion_id: str | None
    """This swarm's champion on this hardware class and budget when last recalled."""
    best_metric: float | None
    """Mean metric of the champion (else the base) when last recalled: a failure measured
    on a base this beats by more than the noise is stale."""
    best_n: int
    """Runs behind ``best_metric``."""
    noise: Noise | None
    """The noise recall measured (``agents.judge.noise_used``; ``None``: none yet): the
    iteration's verdicts are judged with it, against the base's mean read at the same time."""
    recalled: Recalled | None
    """What recall found."""
    proposal: Proposal | None
    """The proposer's output (for an unusable output: its hypothesis, no edits)."""
    proposal_error: str
    """Why the proposer's output was unusable ("" if it was usable)."""
    raw_output: str
    """The proposer's raw text when it was unusable (kept in the invalid trace)."""
    feedback: list[str]
    """Why recent proposals were refused; shown to the proposer, newest last."""
    refusals: int
    """Proposals refused in a row since the last run."""
    near_duplicates: int
    """Drafts refused as near duplicates since the last claim (at
    ``AgentContext.near_duplicate_tries`` the next draft passes that check)."""
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
    short_id: str | None
    """The candidate's short run, promoted to the full budget (multi-fidelity; ``None``
    without one): its full run's trace names it."""
    outcome: Outcome | None
    """The run's result and the protected files it changed."""
    status: str
    """The judged status of the current candidate."""
    reason: str
    """Why it got that status."""
    judged: dict[str, Any]
    """What the verdict was judged against (base mean and n, noise sd and n, threshold, the
    mean and n of the candidate's runs): recorded on its traces."""
    pending: bool
    """The first run passed the screen (or is suspect): it runs again before the verdict."""
    confirm_id: str | None
    """Trace id of the confirmation run."""
    confirm_outcome: Outcome | None
    """The confirmation run's result."""
    confirm_status: str
    """The confirmation run's own status (a failure, or the pair's verdict)."""
    confirm_reason: str
    """Why."""
    remeasure_due: bool
    """The run just recorded was kept: re-measure it before going on."""
    experiments: int
    """Device runs this agent finished, confirmation runs included."""
    last_trace_id: str | None
    """The agent's last recorded trace."""
    stop_reason: str
    """Why the agent stopped ("" while it works)."""
