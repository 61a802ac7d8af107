"""Findings: prior knowledge that is not a run of this swarm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from memory.models import FindingCreate, FindingPublic, Page
from server.deps import StoreDep, Writer
from server.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/findings", tags=["findings"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[FindingPublic])
def list_findings(
    store: StoreDep,
    task: Annotated[str | None, Query(max_length=200)] = None,
    hardware: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Page[FindingPublic]:
    """Findings, newest first."""
    return store.query_findings(task=task, hardware=hardware, limit=limit, offset=offset)


@router.post(
    "",
    response_model=Page[FindingPublic],
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def add_findings(
    findings: Annotated[list[FindingCreate], Body(max_length=10_000)], store: StoreDep
) -> Page[FindingPublic]:
    """Add findings in one transaction."""
    added = store.add_findings(findings)
    return Page[FindingPublic](data=added, count=len(added))
