"""Experiments (traces): list with filters, one with lineage, the champion, the progress
chart's data, and recording a new trace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from memory.errors import InvalidInput, NotFound
from memory.models import (
    ExperimentCreate,
    ExperimentPublic,
    Lineage,
    Page,
    Role,
    Status,
    TraceQuery,
    TraceSort,
)
from server.deps import StoreDep, Writer
from server.errors import ERROR_RESPONSES
from server.schemas import ProgressPage, ProgressPoint

router = APIRouter(prefix="/api", tags=["experiments"], responses=ERROR_RESPONSES)

IdPath = Annotated[str, Path(min_length=1, max_length=64, description="experiment id")]
Text200 = Annotated[str | None, Query(max_length=200)]
Id128 = Annotated[str | None, Query(max_length=128)]
Metric = Annotated[float | None, Query(allow_inf_nan=False)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]

PROGRESS_MAX_POINTS = 10_000  # the chart's first runs; later ones are flagged truncated


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("/experiments", response_model=Page[ExperimentPublic])
def list_experiments(
    store: StoreDep,
    task: Text200 = None,
    swarm_id: Id128 = None,
    agent_id: Id128 = None,
    parent_id: Id128 = None,
    fingerprint: Id128 = None,
    status: Annotated[list[Status] | None, Query(description="repeat for several")] = None,
    role: Annotated[list[Role] | None, Query(description="repeat for several")] = None,
    hardware: Text200 = None,
    metric_min: Metric = None,
    metric_max: Metric = None,
    since: Annotated[datetime | None, Query(description="created at or after (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="created before (UTC)")] = None,
    sort: TraceSort = "-created_at",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ExperimentPublic]:
    """Experiments matching every filter given, sorted and paginated; ``count`` is the
    number of matches (not the page length)."""
    if metric_min is not None and metric_max is not None and metric_min > metric_max:
        raise InvalidInput(f"metric_min: {metric_min} is greater than metric_max {metric_max}")
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since > until:
        raise InvalidInput("since: is after until")
    query = TraceQuery(
        task=task,
        swarm_id=swarm_id,
        agent_id=agent_id,
        parent_id=parent_id,
        fingerprint=fingerprint,
        status=status or None,
        role=role or None,
        hardware=hardware,
        metric_min=metric_min,
        metric_max=metric_max,
        since=since,
        until=until,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return store.query_traces(query)


@router.post(
    "/experiments",
    response_model=ExperimentPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def add_experiment(trace: ExperimentCreate, store: StoreDep) -> ExperimentPublic:
    """Record one experiment. Posting the same id with the same content again returns the
    stored record (safe retries); the same id with other content is a 409 conflict."""
    return store.add_trace(trace)


@router.get("/experiments/{experiment_id}", response_model=ExperimentPublic)
def get_experiment(experiment_id: IdPath, store: StoreDep) -> ExperimentPublic:
    """One experiment, with its diff, knob changes and log tail."""
    return store.get_trace(experiment_id)


@router.get("/experiments/{experiment_id}/lineage", response_model=Lineage)
def get_lineage(experiment_id: IdPath, store: StoreDep) -> Lineage:
    """One experiment (diff, log tail) with its ancestors (root first) and descendants."""
    return store.lineage(experiment_id)


@router.get("/champion", response_model=ExperimentPublic)
def get_champion(
    store: StoreDep,
    task: Annotated[str, Query(min_length=1, max_length=200)],
    hardware: Text200 = None,
) -> ExperimentPublic:
    """The best kept experiment of ``task`` (on ``hardware`` if given); 404 if none."""
    best = store.champion(task, hardware)
    if best is None:
        where = f" on hardware {hardware!r}" if hardware else ""
        raise NotFound(f"no kept experiment with a metric for task {task!r}{where}")
    return best


@router.get("/progress", response_model=ProgressPage)
def get_progress(
    store: StoreDep,
    task: Annotated[str, Query(min_length=1, max_length=200)],
    hardware: Text200 = None,
    swarm_id: Id128 = None,
) -> ProgressPage:
    """Every run of ``task`` in order with the running best among keeps: the data of the
    progress chart (autoresearch's progress.png)."""
    rows: list[ExperimentPublic] = []
    total = 0
    while len(rows) < PROGRESS_MAX_POINTS:
        page = store.query_traces(
            TraceQuery(
                task=task,
                hardware=hardware,
                swarm_id=swarm_id,
                sort="created_at",
                limit=1000,
                offset=len(rows),
            )
        )
        total = page.count
        rows.extend(page.data)
        if not page.data or len(rows) >= total:
            break
    direction = rows[-1].direction if rows else "minimize"
    metric_name = rows[-1].metric_name if rows else "val_bpb"
    points: list[ProgressPoint] = []
    best: float | None = None
    for index, row in enumerate(rows):
        is_best = False
        if row.status == Status.keep and row.metric is not None:
            better = (
                best is None
                or (direction == "minimize" and row.metric < best)
                or (direction == "maximize" and row.metric > best)
            )
            if better:
                best, is_best = row.metric, True
        points.append(
            ProgressPoint(
                id=row.id,
                index=index,
                created_at=row.created_at,
                status=row.status,
                metric=row.metric,
                best=best,
                is_best=is_best,
                hypothesis=row.hypothesis[:300],
                agent_id=row.agent_id,
            )
        )
    return ProgressPage(
        data=points,
        count=len(points),
        task=task,
        metric_name=metric_name,
        direction=direction,
        truncated=total > len(points),
    )
