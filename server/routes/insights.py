"""Insights: what the trusted runs of a task say, per knob move and per idea
(``Store.insights``, ``memory.insights``)."""

from __future__ import annotations

from fastapi import APIRouter

from memory.errors import NotFound
from memory.insights import InsightReport
from memory.models import TraceQuery
from server.deps import StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Budget, TaskName, Text100

router = APIRouter(prefix="/api", tags=["insights"], responses=ERROR_RESPONSES)


@router.get("/insights", response_model=InsightReport)
def get_insights(
    store: StoreDep, task: TaskName, hardware: Text100 = None, budget: Budget = None
) -> InsightReport:
    """The insights of ``task`` (on ``hardware``, with run budget ``budget`` seconds when
    given): per knob and direction of move, the mean gain over the base in units of the
    noise, its spread, n and the crash rate by region; free-form edits grouped by meaning
    with what each did; each with the ids of its traces and stale when all of them were
    measured on a base the champion has outgrown; and insights imported from packs.
    Computed without an LLM and cached until a trace or finding of the task is added.
    404 when the memory holds no trace and no finding of ``task``."""
    if (
        store.count(TraceQuery(task=task)) == 0
        and store.query_findings(task=task, limit=1).count == 0
    ):
        raise NotFound(f"task {task!r}: no trace and no finding of this task in the memory")
    return store.insights(task, hardware, budget)
