"""Health, statistics, the list of tasks, and index maintenance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from memory.models import Stats
from server import __version__
from server.deps import BodylessWriter, SettingsDep, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Id64, Text200
from server.schemas import Health, IndexCount, ReindexResult, TaskList

router = APIRouter(prefix="/api", tags=["meta"], responses=ERROR_RESPONSES)


@router.get("/health", response_model=Health)
def health(store: StoreDep, settings: SettingsDep) -> Health:
    """Liveness, the backend in use and whether writes are enabled (and how)."""
    return Health(version=__version__, store=type(store).__name__, writes=settings.write_mode)


@router.get("/stats", response_model=Stats)
def stats(store: StoreDep, task: Text200 = None, swarm_id: Id64 = None) -> Stats:
    """Counts by status, keep rate, duplicates refused, experiments per hour."""
    return store.stats(task=task, swarm_id=swarm_id)


@router.get("/tasks", response_model=TaskList)
def tasks(store: StoreDep) -> TaskList:
    """Task names known to this memory: every task with traces (``Stats.tasks``), most
    recently active first, then those of swarms that have none yet."""
    names = dict.fromkeys(store.stats().tasks)
    for swarm in store.list_swarms():
        names.setdefault(swarm.task, None)
    return TaskList(data=list(names), count=len(names))


@router.post("/reindex", response_model=ReindexResult, dependencies=[BodylessWriter])
def reindex(
    store: StoreDep,
    full: Annotated[bool, Query(description="rebuild the whole index from SQL")] = False,
) -> ReindexResult:
    """Index every row not yet in the vector index (or all rows with ``full``). No body:
    send ``X-Labswarm-Write: 1`` (or ``Content-Type: application/json``), which no
    cross-site form can."""
    return ReindexResult(indexed=store.reindex(full=full))


@router.get("/index/count", response_model=IndexCount)
def index_count(store: StoreDep) -> IndexCount:
    """Items in the vector index (traces + findings), to compare with SQL counts."""
    return IndexCount(count=store.index_count())
