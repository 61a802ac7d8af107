"""Swarms and their agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from memory.models import AgentCreate, AgentPublic, Page, SwarmCreate, SwarmPublic
from server.deps import StoreDep, Writer
from server.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api", tags=["swarms"], responses=ERROR_RESPONSES)


@router.get("/swarms", response_model=Page[SwarmPublic])
def list_swarms(
    store: StoreDep,
    task: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[SwarmPublic]:
    """Swarms, newest first."""
    swarms = store.list_swarms(task)
    return Page[SwarmPublic](data=swarms, count=len(swarms))


@router.put("/swarms", response_model=SwarmPublic, dependencies=[Writer])
def upsert_swarm(swarm: SwarmCreate, store: StoreDep) -> SwarmPublic:
    """Create or update a swarm (by id)."""
    return store.upsert_swarm(swarm)


@router.get("/agents", response_model=Page[AgentPublic])
def list_agents(
    store: StoreDep,
    swarm_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[AgentPublic]:
    """Agents and what each is doing now, by swarm then name."""
    agents = store.list_agents(swarm_id)
    return Page[AgentPublic](data=agents, count=len(agents))


@router.put("/agents", response_model=AgentPublic, dependencies=[Writer])
def upsert_agent(agent: AgentCreate, store: StoreDep) -> AgentPublic:
    """Create or update an agent's live state (by id, default ``swarm_id/name``)."""
    return store.upsert_agent(agent)
