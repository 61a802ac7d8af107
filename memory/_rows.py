"""Validation of incoming records into table rows (ids, UTC times, non-empty keys).

Every record is checked by its *Create model (``memory.models`` input limits: finite
numbers, clean text, bounded JSON and datetimes), and its public form is serialised once
before the row is returned, so nothing that could not be read back is ever committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from memory._sql import invalid, to_public_finding, to_public_trace, utc_fields
from memory.errors import InvalidInput
from memory.models import (
    Experiment,
    ExperimentCreate,
    Finding,
    FindingCreate,
    new_id,
    utc,
    utcnow,
)

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], value: M, label: str, required: Sequence[str] = ()) -> M:
    """Re-validate ``value`` as ``model`` (callers may hand in unchecked copies) and refuse
    blank ``required`` fields; errors name ``label.field``."""
    try:
        value = model.model_validate(value.model_dump())
    except ValidationError as exc:
        raise invalid(exc, label) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # an unchecked copy that
        raise InvalidInput(f"{label}: cannot be serialised: {exc}") from exc  # won't dump
    for name in required:
        if not str(getattr(value, name)).strip():
            raise InvalidInput(f"{label}.{name}: must not be empty")
    return value


def trace_row(trace: ExperimentCreate) -> Experiment:
    trace = validated(ExperimentCreate, trace, "trace", ("task", "fingerprint"))
    data = utc_fields(trace.model_dump())
    data["id"] = data["id"] or new_id()
    data["created_at"] = utc(data["created_at"]) or utcnow()
    row = Experiment(**data, indexed=False)
    _readable(row, to_public_trace, "trace")
    return row


def finding_row(finding: FindingCreate) -> Finding:
    finding = validated(FindingCreate, finding, "finding", ("change", "source"))
    data = finding.model_dump()
    data["id"] = data["id"] or new_id()
    row = Finding(**data, indexed=False)
    _readable(row, to_public_finding, "finding")
    return row


def _readable(row: Any, public: Any, label: str) -> None:
    """Refuse a row whose public form cannot be built or serialised (it would break every
    read that lists it)."""
    try:
        public(row).model_dump_json()
    except ValidationError as exc:
        raise invalid(exc, label) from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"{label}: cannot be serialised: {exc}") from exc
