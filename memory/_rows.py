"""Validation of incoming records into table rows (ids, UTC times, non-empty keys)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from memory._sql import invalid, utc, utc_fields
from memory.errors import InvalidInput
from memory.models import Experiment, ExperimentCreate, Finding, FindingCreate, new_id, utcnow

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], value: M, label: str, required: Sequence[str] = ()) -> M:
    """Re-validate ``value`` as ``model`` (callers may hand in unchecked copies) and refuse
    blank ``required`` fields; errors name ``label.field``."""
    try:
        value = model.model_validate(value.model_dump())
    except ValidationError as exc:
        raise invalid(exc, label) from exc
    for name in required:
        if not str(getattr(value, name)).strip():
            raise InvalidInput(f"{label}.{name}: must not be empty")
    return value


def trace_row(trace: ExperimentCreate) -> Experiment:
    trace = validated(ExperimentCreate, trace, "trace", ("task", "fingerprint"))
    data = utc_fields(trace.model_dump())
    data["id"] = data["id"] or new_id()
    data["created_at"] = utc(data["created_at"]) or utcnow()
    return Experiment(**data, indexed=False)


def finding_row(finding: FindingCreate) -> Finding:
    finding = validated(FindingCreate, finding, "finding", ("change", "source"))
    data = finding.model_dump()
    data["id"] = data["id"] or new_id()
    return Finding(**data, indexed=False)
