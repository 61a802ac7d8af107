"""Semantic search over traces and findings (the only route that needs the embedder)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from memory.models import MAX_PAGE, Page, SearchHit, Status
from server.deps import StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Clean, Text200

router = APIRouter(prefix="/api", tags=["search"], responses=ERROR_RESPONSES)


@router.get("/search", response_model=Page[SearchHit])
def search(
    store: StoreDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="the search text"), Clean],
    kinds: Annotated[
        list[Literal["trace", "finding"]] | None,
        Query(description="trace and/or finding (repeat); default both"),
    ] = None,
    task: Text200 = None,
    status: Annotated[list[Status] | None, Query(description="trace statuses (repeat)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
) -> Page[SearchHit]:
    """Nearest traces and findings to ``q`` by embedding, best first; ``score`` is cosine
    similarity (higher is nearer). Only whitespace is a 422 from the store."""
    wanted = tuple(dict.fromkeys(kinds)) if kinds else ("trace", "finding")
    hits = store.search(q, kinds=wanted, task=task, status=status or None, limit=limit)
    return Page[SearchHit](data=hits, count=len(hits))
