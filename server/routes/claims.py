"""Claims: proposals running right now."""

from __future__ import annotations

from fastapi import APIRouter, status

from memory.models import ClaimCreate, ClaimPublic, Page
from server.deps import BodylessWriter, JsonWriter, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import IdPath, Text200

router = APIRouter(prefix="/api/claims", tags=["claims"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[ClaimPublic])
def list_claims(store: StoreDep, task: Text200 = None) -> Page[ClaimPublic]:
    """Claims in flight (neither released nor expired), oldest first."""
    claims = store.active_claims(task)
    return Page[ClaimPublic](data=claims, count=len(claims))


@router.post(
    "",
    response_model=ClaimPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonWriter],
)
def create_claim(claim: ClaimCreate, store: StoreDep) -> ClaimPublic:
    """Claim a program fingerprint atomically: 409 ``already_claimed`` while another
    claim holds it, 409 ``already_ran`` once a finished run of it exists, 422 for a
    ``ttl_seconds`` the store refuses."""
    return store.claim(claim)


@router.post("/{claim_id}/release", response_model=ClaimPublic, dependencies=[BodylessWriter])
def release_claim(claim_id: IdPath, store: StoreDep) -> ClaimPublic:
    """Release a claim (idempotent); 404 if unknown. No body: send
    ``X-Labswarm-Write: 1`` (or ``Content-Type: application/json``)."""
    return store.release(claim_id)
