"""Swarms and their agents."""

from __future__ import annotations

from fastapi import APIRouter

from memory.models import AgentCreate, AgentPublic, Page, SwarmCreate, SwarmPublic
from server.deps import JsonWriter, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Id64, Text200

router = APIRouter(prefix="/api", tags=["swarms"], responses=ERROR_RESPONSES)


@router.get("/swarms", response_model=Page[SwarmPublic])
def list_swarms(store: StoreDep, task: Text200 = None) -> Page[SwarmPublic]:
    """Swarms, newest first."""
    swarms = store.list_swarms(task)
    return Page[SwarmPublic](data=swarms, count=len(swarms))


@router.put("/swarms", response_model=SwarmPublic, dependencies=[JsonWriter])
def upsert_swarm(swarm: SwarmCreate, store: StoreDep) -> SwarmPublic:
    """Create or update a swarm (by id)."""
    return store.upsert_swarm(swarm)


@router.get("/agents", response_model=Page[AgentPublic])
def list_agents(store: StoreDep, swarm_id: Id64 = None) -> Page[AgentPublic]:
    """Agents and what each is doing now, by swarm then name."""
    agents = store.list_agents(swarm_id)
    return Page[AgentPublic](data=agents, count=len(agents))


@router.put("/agents", response_model=AgentPublic, dependencies=[JsonWriter])
def upsert_agent(agent: AgentCreate, store: StoreDep) -> AgentPublic:
    """Create or update an agent's live state (by id, default ``swarm_id/name``)."""
    return store.upsert_agent(agent)
