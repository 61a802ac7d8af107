"""Findings: prior knowledge that is not a run of this swarm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from memory.models import FindingCreate, FindingPublic, Page
from server.deps import JsonWriter, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Limit, Offset, Text100, Text200

router = APIRouter(prefix="/api/findings", tags=["findings"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[FindingPublic])
def list_findings(
    store: StoreDep,
    task: Text200 = None,
    hardware: Text100 = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[FindingPublic]:
    """Findings, newest first."""
    return store.query_findings(task=task, hardware=hardware, limit=limit, offset=offset)


@router.post(
    "",
    response_model=Page[FindingPublic],
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonWriter],
)
def add_findings(
    findings: Annotated[list[FindingCreate], Body(max_length=10_000)], store: StoreDep
) -> Page[FindingPublic]:
    """Add findings in one transaction."""
    added = store.add_findings(findings)
    return Page[FindingPublic](data=added, count=len(added))
