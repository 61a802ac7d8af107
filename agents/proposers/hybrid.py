"""The hybrid proposer: an LLM proposes structural changes, the builtin sampler tunes the
knobs in between.

- **Sides**: an :class:`~agents.proposers.llm.LLMProposer` (any chat model) and a
  :class:`~agents.proposers.builtin.BuiltinProposer` (TPE over the task's knobs). Both get
  the same :class:`ProposalRequest` -- the same recalled memory, findings and claims -- and
  change the same base: the builtin samples the knobs *of the agent's base*, so after an
  LLM change is kept and built on, the builtin tunes the knobs of that changed program.
  The builtin's study is the shared memory, as always: every judged run of the task here
  is a trial of its knob values, LLM-proposed runs included.
- **Ratio** (``ratio``, ``--hybrid-ratio K``): K builtin proposals, then one LLM proposal,
  then K builtin... The default :data:`DEFAULT_RATIO` is documented in docs/agents.md.
- **Turns come from memory, not from a counter**: the turn of a proposal is the number
  ``n`` of experiment traces this agent has recorded (runs, refusals and interrupted runs
  alike: every proposal that reached memory); it is the LLM's turn when
  ``n % (K + 1) == K``. So the alternation is per agent, deterministic, and survives a
  crash and ``--resume`` (the count is re-read). A proposal that is sent back without a
  trace (knob changes too close to a recorded failure) keeps its turn.
- **Unusable LLM output counts as the LLM's turn**: the ``ProposalInvalid`` goes up to the
  graph, which records it as ``invalid`` with its reason; the next turns are the
  builtin's. There is no builtin fallback in the same turn: the refusal is the evidence
  of what the model got wrong, and it is kept. The LLM does not lose it: on its next turn
  the reasons its own refused proposals were given (read from memory, newest back to its
  last proposal that ran) are added to the request's feedback. A broken model therefore
  costs one proposal in K + 1 and no device time; the builtin's runs keep the agent going.
- **An exhausted builtin hands its turn to the LLM** (``SearchExhausted``: every knob
  configuration near the base already ran), which can still change the structure.
- **A model that does not answer hands its turn to the builtin** (``ModelUnavailable``:
  its server down or hung for ``SERVER_PATIENCE_S``): the agent goes on with builtin
  runs and asks the model again on its next turn, where an LLM agent would stop. That
  turn asks once and does not wait the patience out again (``LLMProposer.unanswered``)
  until the server has answered; an OpenAI-compatible server is first asked for its list
  of models (``PROBE_TIMEOUT_S``), so a hung one costs the turn seconds; one that lists
  its models and never answers a request is left quiet (``QUIET_S``, doubling), its turns
  the builtin's at once.
- **Who proposed it**: every proposal carries ``proposer`` = ``"hybrid:llm"`` or
  ``"hybrid:builtin"``, recorded on its trace; :attr:`name` follows the current turn, so a
  refusal recorded under the proposer's name (an unusable LLM answer) names its side too.
"""

from __future__ import annotations

import dataclasses
import logging

from agents.proposers.base import (
    ModelUnavailable,
    Proposal,
    ProposalRequest,
    Proposer,
    SearchExhausted,
)
from memory.models import MAX_PAGE, RAN_STATUSES, Role, Status, TraceQuery

log = logging.getLogger(__name__)

DEFAULT_RATIO = 3  # builtin proposals per LLM proposal
LLM = "hybrid:llm"
BUILTIN = "hybrid:builtin"
LLM_FEEDBACK_KEEP = 4  # the LLM's own refusal reasons carried to its next turn


def turn(n: int, ratio: int) -> str:
    """Whose turn proposal number ``n`` (0-based, per agent) is: K builtin, then one LLM."""
    if ratio < 1:
        raise ValueError(f"ratio: must be at least 1 builtin proposal per LLM one, got {ratio}")
    return LLM if n % (ratio + 1) == ratio else BUILTIN


class HybridProposer(Proposer):
    """An LLM side and a builtin side taking turns: ``ratio`` builtin proposals per LLM one."""

    name = "hybrid"

    def __init__(self, llm: Proposer, builtin: Proposer, *, ratio: int = DEFAULT_RATIO) -> None:
        turn(0, ratio)  # validates the ratio
        self.llm = llm
        self.builtin = builtin
        self.ratio = ratio

    def proposed_so_far(self, request: ProposalRequest) -> int:
        """How many proposals this agent has recorded in memory (its experiment traces)."""
        query = TraceQuery(
            task=request.task.name, agent_id=request.agent_id, role=[Role.experiment], limit=1
        )
        return request.store.query_traces(query).count

    def llm_feedback(self, request: ProposalRequest) -> list[str]:
        """Why the LLM's own recent proposals were refused, oldest first: the agent's
        ``hybrid:llm`` traces that never ran, newest back to the last one that ran."""
        window = (self.ratio + 1) * LLM_FEEDBACK_KEEP
        query = TraceQuery(
            task=request.task.name,
            agent_id=request.agent_id,
            role=[Role.experiment],
            sort="-created_at",
            limit=min(window, MAX_PAGE),
        )
        reasons: list[str] = []
        for trace in request.store.query_traces(query).data:
            if trace.proposer != LLM:
                continue
            if trace.status in RAN_STATUSES or trace.status == Status.interrupted:
                break
            if trace.error and trace.error not in reasons:
                reasons.append(trace.error)
            if len(reasons) >= LLM_FEEDBACK_KEEP:
                break
        return reasons[::-1]

    def _ask_llm(self, request: ProposalRequest) -> Proposal:
        self.name = LLM
        own = self.llm_feedback(request)
        feedback = own + [r for r in request.feedback if r not in own]
        proposal = self.llm.propose(dataclasses.replace(request, feedback=feedback))
        return proposal.model_copy(update={"proposer": LLM})

    def propose(self, request: ProposalRequest) -> Proposal:
        side = turn(self.proposed_so_far(request), self.ratio)
        if side == LLM:
            try:
                return self._ask_llm(request)
            except ModelUnavailable as exc:
                log.warning("%s: %s; the builtin takes the turn", request.agent_id, exc)
        self.name = BUILTIN
        try:
            proposal = self.builtin.propose(request)
        except SearchExhausted as exc:
            log.info("%s: builtin exhausted (%s); the LLM takes the turn", request.agent_id, exc)
            return self._ask_llm(request)
        return proposal.model_copy(update={"proposer": BUILTIN})

    def close(self) -> None:
        try:
            self.llm.close()
        finally:
            self.builtin.close()
