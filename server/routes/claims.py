"""Claims: proposals running right now."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from memory.errors import InvalidInput
from memory.models import ClaimCreate, ClaimPublic, Page
from server.deps import StoreDep, Writer
from server.errors import ERROR_RESPONSES

MAX_TTL_SECONDS = 366 * 24 * 3600  # a claim that outlives a year is a mistake

router = APIRouter(prefix="/api/claims", tags=["claims"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[ClaimPublic])
def list_claims(
    store: StoreDep,
    task: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ClaimPublic]:
    """Claims in flight (neither released nor expired), oldest first."""
    claims = store.active_claims(task)
    return Page[ClaimPublic](data=claims, count=len(claims))


@router.post(
    "",
    response_model=ClaimPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def create_claim(claim: ClaimCreate, store: StoreDep) -> ClaimPublic:
    """Claim a program fingerprint atomically: 409 ``already_claimed`` while another
    claim holds it, 409 ``already_ran`` once a finished run of it exists."""
    ttl = claim.ttl_seconds
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_SECONDS):
        raise InvalidInput(
            f"body.ttl_seconds: must be a number of seconds in (0, {MAX_TTL_SECONDS}], got {ttl}"
        )
    return store.claim(claim)


@router.post("/{claim_id}/release", response_model=ClaimPublic, dependencies=[Writer])
def release_claim(
    claim_id: Annotated[str, Path(min_length=1, max_length=64)], store: StoreDep
) -> ClaimPublic:
    """Release a claim (idempotent); 404 if unknown."""
    return store.release(claim_id)
