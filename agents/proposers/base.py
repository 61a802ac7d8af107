"""The proposer interface: recalled context in, a :class:`Proposal` out.

A proposer never applies anything: the graph's ``check`` node validates the edits,
fingerprints the result and refuses duplicates. A proposer that cannot produce a
usable proposal raises :class:`ProposalInvalid` (the reason is recorded as an
``invalid`` trace and fed back on the next try) or :class:`SearchExhausted`; one that
gives up a proposal because the swarm is stopping (``ProposalRequest.stop`` is set)
raises :class:`ProposalAbandoned`, and nothing is recorded.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, field

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from agents.devices import Device
from agents.program import Edit, Program
from agents.task import Task
from memory.base import Store
from memory.models import ClaimPublic, ExperimentPublic, FindingPublic


class Proposal(BaseModel):
    """One change to try: why, and the search/replace edits that make it."""

    hypothesis: str = Field(description="what the change tests and why it may help, one sentence")
    edits: list[Edit] = Field(description="search/replace edits to the editable files")
    # who made it ("llm", "hybrid:llm"; "": the agent's proposer's name); set by the code,
    # never by a model: not part of the JSON schema a model is asked to fill
    proposer: SkipJsonSchema[str] = Field(default="", max_length=100)


class ProposalInvalid(Exception):
    """The proposer's output is unusable; ``reason`` goes back to it, ``raw`` is kept."""

    def __init__(self, reason: str, raw: str = "", hypothesis: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.hypothesis = hypothesis


class SearchExhausted(Exception):
    """The proposer finds nothing new to try (every candidate already ran or is claimed)."""


class ModelUnavailable(RuntimeError):
    """The proposer's model has not answered for as long as it waits (its server down or
    hung): an LLM agent stops with this error; a hybrid's builtin side takes the turn."""


class ProposalAbandoned(Exception):
    """The proposer stopped working on a proposal because the swarm is stopping."""


@dataclass
class ProposalRequest:
    """Everything ``recall`` gathered for one proposal."""

    task: Task
    agent_id: str
    device: Device
    store: Store
    base: Program  # the program to change
    base_trace: ExperimentPublic | None
    base_metric: float | None
    champion: ExperimentPublic | None  # this swarm's best trusted keep
    related: list[ExperimentPublic] = field(default_factory=list)  # failures included
    findings: list[FindingPublic] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # related failures on an older base
    claims: list[ClaimPublic] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)  # why earlier tries were refused
    recall: bool = True  # False: the proposer may learn only from this agent's own traces
    budget: float | None = None  # the swarm's seconds per run: runs at others are not trials
    # what memory has learned of the task here (``InsightReport.prompt_lines``), first in
    # the prompt; empty with the ``insights`` switch off
    insights: list[str] = field(default_factory=list)
    # set when the swarm is stopping: a proposer that takes long (a local model generating
    # on a CPU) may give the proposal up by raising ProposalAbandoned
    stop: threading.Event | None = None


class Proposer(abc.ABC):
    """Turns a :class:`ProposalRequest` into a :class:`Proposal`. One instance per agent."""

    name: str = "proposer"
    # Whether it reads recalled text (insights, traces found by meaning): False for the
    # builtin sampler, which reads its study from memory itself, so the iteration spends
    # nothing on gathering text for it (``agents.nodes``).
    reads_text: bool = True

    @abc.abstractmethod
    def propose(self, request: ProposalRequest) -> Proposal:
        """A proposal, or raise ``ProposalInvalid`` / ``SearchExhausted``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


def made_by(proposal: Proposal | None, proposer: Proposer) -> str:
    """Who made ``proposal``, as its trace records it: the proposal's own ``proposer``
    (a hybrid's side, "hybrid:llm"), else the agent's proposer's name."""
    return (proposal.proposer if proposal is not None else "") or proposer.name
