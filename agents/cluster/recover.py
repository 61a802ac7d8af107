"""Picking an agent up from memory alone, as a cluster needs: an agent restarted on
another node (or by a resumed driver) has no checkpoint of its own, so what it did is
read back from the shared memory, the one place that survives a node.

- :func:`settle_claims`: every claim the agent still holds is a run cut off by the death
  of its process or node. It is recorded ``interrupted`` (unless its trace made it into
  memory before the death) and released, so no program stays blocked and no run is lost.
- :func:`agent_progress`: where the agent stood: its base (the row it last wrote) and how
  many experiments it finished.
"""

from __future__ import annotations

import logging

from agents.tracing import Author, write_trace
from memory.base import Store
from memory.errors import NotFound
from memory.models import RAN_STATUSES, RUN_ROLES, ClaimPublic, Role, Status, TraceQuery, new_id

log = logging.getLogger(__name__)

CUT_OFF = "the agent's process or node died while this run was in flight"


def _recorded(store: Store, claim: ClaimPublic) -> bool:
    """True if the claimed program's trace by this agent reached memory after the claim."""
    page = store.query_traces(
        TraceQuery(
            task=claim.task,
            agent_id=claim.agent_id,
            fingerprint=claim.fingerprint,
            since=claim.created_at,
            limit=1,
        )
    )
    return bool(page.data)


def settle_claims(store: Store, author: Author, why: str = CUT_OFF) -> list[str]:
    """Record each claim ``author``'s agent still holds as an ``interrupted`` run and
    release it; the ids of the traces written."""
    written: list[str] = []
    for claim in store.active_claims(author.task.name):
        if claim.agent_id != author.agent_id:
            continue
        if not _recorded(store, claim):
            trace = author.trace(
                Status.interrupted,
                id=new_id(),
                role=Role.experiment,
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
