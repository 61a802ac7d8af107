"""Experiments (traces): list with filters, one with lineage, and recording a new trace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from memory.errors import InvalidInput
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
from server.deps import JsonWriter, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Budget, Id128, IdPath, Limit, Metric, Offset, Text200, When

router = APIRouter(prefix="/api", tags=["experiments"], responses=ERROR_RESPONSES)


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
    budget_s: Budget = None,
    trusted: Annotated[
        bool, Query(description="only traces this installation ran (no seed, no import)")
    ] = False,
    metric_min: Metric = None,
    metric_max: Metric = None,
    since: Annotated[When, Query(description="created at or after (UTC if no zone)")] = None,
    until: Annotated[When, Query(description="created before (UTC if no zone)")] = None,
    sort: TraceSort = "-created_at",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ExperimentPublic]:
    """Experiments matching every filter given, sorted and paginated; ``count`` is the
    number of matches (not the page length). ``budget_s`` matches the recorded run budget
    exactly (a trace without one never matches)."""
    if metric_min is not None and metric_max is not None and metric_min > metric_max:
        raise InvalidInput(f"metric_min: {metric_min} is greater than metric_max {metric_max}")
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
        budget_s=budget_s,
        trusted=trusted,
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
    dependencies=[JsonWriter],
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
