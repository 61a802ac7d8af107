"""Validation of incoming records into table rows (ids, UTC times, non-empty keys)."""

from __future__ import annotations

from pydantic import ValidationError

from memory._sql import invalid, utc, utc_fields
from memory.errors import InvalidInput
from memory.models import Experiment, ExperimentCreate, Finding, FindingCreate, new_id, utcnow


def trace_row(trace: ExperimentCreate) -> Experiment:
    try:
        trace = ExperimentCreate.model_validate(trace.model_dump())
    except ValidationError as exc:
        raise invalid(exc, "trace") from exc
    if not trace.task.strip():
        raise InvalidInput("trace.task: must not be empty")
    if not trace.fingerprint.strip():
        raise InvalidInput("trace.fingerprint: must not be empty")
    data = utc_fields(trace.model_dump())
    data["id"] = data["id"] or new_id()
    data["created_at"] = utc(data["created_at"]) or utcnow()
    return Experiment(**data, indexed=False)


def finding_row(finding: FindingCreate) -> Finding:
    try:
        finding = FindingCreate.model_validate(finding.model_dump())
    except ValidationError as exc:
        raise invalid(exc, "finding") from exc
    if not finding.change.strip():
        raise InvalidInput("finding.change: must not be empty")
    if not finding.source.strip():
        raise InvalidInput("finding.source: must not be empty")
    data = finding.model_dump()
    data["id"] = data["id"] or new_id()
    return Finding(**data, indexed=False)
