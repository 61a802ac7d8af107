"""Bulk import of records and seed packs, and export of a swarm as a seed pack."""

from __future__ import annotations

import io
import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from memory.errors import InvalidInput
from memory.models import ImportResult, Status, TraceQuery
from memory.packs import export_pack as write_export
from memory.packs import read_pack
from server.deps import PACK_MEDIA, JsonWriter, PackWriter, StoreDep
from server.errors import ERROR_RESPONSES
from server.params import Id64, Text100, Text200
from server.schemas import ImportRequest

router = APIRouter(prefix="/api", tags=["packs"], responses=ERROR_RESPONSES)

_PACK_BODY = {
    "requestBody": {
        "required": True,
        "content": {PACK_MEDIA: {"schema": {"type": "string"}}},
        "description": "a memory pack: JSONL, header line first (format: seeds/README.md); "
        "Content-Type application/x-ndjson or application/jsonl, anything else is 415",
    }
}


@router.post("/import", response_model=ImportResult, dependencies=[JsonWriter])
def import_records(request: ImportRequest, store: StoreDep) -> ImportResult:
    """Import traces and findings in one transaction: all or nothing; ids already present
    are skipped, so importing the same records twice adds nothing."""
    return store.import_records(request.traces, request.findings)


@router.post(
    "/packs",
    response_model=ImportResult,
    dependencies=[PackWriter],
    openapi_extra=_PACK_BODY,
)
async def import_pack(request: Request, store: StoreDep) -> ImportResult:
    """Import a seed pack sent as the JSONL body (``curl --data-binary @pack.jsonl -H
    'Content-Type: application/x-ndjson'``).
    The whole pack is checked first (errors name the line), then imported in one
    transaction; importing it twice adds nothing."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    pack = read_pack(io.StringIO(text), "body")
    return await run_in_threadpool(store.import_records, pack.traces, pack.findings)


def _export_text(store: StoreDep, query: TraceQuery, name: str, findings: bool) -> str:
    out = io.StringIO()
    source = f"labswarm server ({type(store).__name__})"
    write_export(store, out, name=name, query=query, findings=findings, source=source)
    return out.getvalue()


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {
            "content": {PACK_MEDIA: {"schema": {"type": "string"}}},
            "description": "the pack, one JSON object per line, header first",
        }
    },
)
def export_pack(
    store: StoreDep,
    task: Text200 = None,
    swarm_id: Id64 = None,
    hardware: Text100 = None,
    status: Annotated[list[Status] | None, Query(description="repeat for several")] = None,
    findings: Annotated[bool, Query(description="include the task's findings")] = True,
    name: Annotated[
        str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9._-]+$", description="pack name")
    ] = None,
) -> Response:
    """The matching traces (oldest first) and findings as a seed pack that another
    swarm can import (``labswarm seed`` or ``POST /api/packs``)."""
    query = TraceQuery(task=task, swarm_id=swarm_id, hardware=hardware, status=status or None)
    pack_name = name or re.sub(r"[^A-Za-z0-9._-]+", "-", swarm_id or task or "labswarm") or "pack"
    text = _export_text(store, query, pack_name, findings)
    return Response(
        text,
        media_type=PACK_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{pack_name}.jsonl"'},
    )
