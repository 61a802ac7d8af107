"""Picking an agent up from memory alone, as a cluster needs: an agent restarted on
another node (or by a resumed driver) has no checkpoint of its own, so what it did is
read back from the shared memory, the one place that survives a node.

- :func:`settle_claims`: every claim the agent still holds is a run cut off by the death
  of its process or node. It is recorded ``interrupted`` (unless its trace made it into
  memory before the death) and released, so no program stays blocked and no run is lost;
  with a short budget, a cut-off short run is recorded as one.
- :func:`agent_progress`: where the agent stood: its base (the row it last wrote) and how
  many experiments it finished.
"""

from __future__ import annotations

import logging

from agents.tracing import Author, write_trace
from memory.base import Store
from memory.errors import NotFound
from memory.models import (
    RAN_STATUSES,
    RUN_ROLES,
    ClaimPublic,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
    new_id,
)

log = logging.getLogger(__name__)

CUT_OFF = "the agent's process or node died while this run was in flight"


def _recorded(store: Store, claim: ClaimPublic, role: Role) -> ExperimentPublic | None:
    """The claimed program's trace of ``role`` by this agent written after the claim."""
    page = store.query_traces(
        TraceQuery(
            task=claim.task,
            agent_id=claim.agent_id,
            fingerprint=claim.fingerprint,
            role=[role],
            since=claim.created_at,
            limit=1,
        )
    )
    return page.data[0] if page.data else None


def settle_claims(
    store: Store, author: Author, why: str = CUT_OFF, short_budget: float | None = None
) -> list[str]:
    """Record each claim ``author``'s agent still holds as an ``interrupted`` run and
    release it; the ids of the traces written. With a ``short_budget`` (multi-fidelity) a
    claim whose short run is not in memory was cut off during that short run (recorded as
    one, at that budget); one whose short run was not promoted had nothing in flight."""
    written: list[str] = []
    for claim in store.active_claims(author.task.name):
        if claim.agent_id != author.agent_id:
            continue
        ran_short = _recorded(store, claim, Role.short) if short_budget is not None else None
        cut_short = short_budget is not None and ran_short is None
        in_flight = ran_short is None or ran_short.status == Status.keep
        if in_flight and _recorded(store, claim, Role.experiment) is None:
            trace = author.cut_off(
                short_budget if cut_short else None,
                id=new_id(),
                parent_id=claim.parent_id,
                hypothesis=claim.hypothesis,
                fingerprint=claim.fingerprint,
                knobs=claim.knobs,
                error=why,
            )
            write_trace(store, trace)
            written.append(str(trace.id))
            log.warning("%s: recorded the cut-off run %s as interrupted", author.agent_id, trace.id)
        try:
            store.release(claim.id)
        except NotFound:
            pass
    return written


def agent_progress(store: Store, swarm_id: str, agent_id: str) -> tuple[str | None, int]:
    """The agent's base trace id (None: never recorded) and the experiments it finished."""
    row = next((a for a in store.list_agents(swarm_id) if a.id == agent_id), None)
    ran = store.query_traces(
        TraceQuery(
            agent_id=agent_id,
            role=list(RUN_ROLES),
            status=list(RAN_STATUSES),
            limit=1,
        )
    ).count
    if row is None:
        return None, ran
    return row.base_id, max(row.experiments, ran)
