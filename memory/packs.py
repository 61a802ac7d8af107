"""Memory packs: versioned JSONL files of traces and findings (format: ``seeds/README.md``).

Line 1 is a header ``{"labswarm_pack": 1, "name": ..., "records": N, ...}``; every other
non-blank line is one record ``{"type": "trace" | "finding", ...}`` carrying ``source`` and
``hardware``. ``load_pack`` reads and checks the whole file before anything touches a
store: any malformed line, wrong type, missing or unknown field, duplicate id or a record
count that disagrees with the header raises ``InvalidInput("file:line: reason")``.
``import_pack`` then writes everything in one transaction (all or nothing); ids are stable
(given, or a hash of the record's content), so importing a pack twice adds nothing.

Packs are evidence, never trusted runs: types are strict (``"metric": true`` or ``"1.5"``
is an error, not a coercion), ``NaN``/``Infinity`` and over-deep lines are refused, a pack
cannot declare ``role: "baseline"`` or ``role: "confirmation"`` (``UNPACKED_ROLES``), and every
imported trace gets a non-empty ``source`` (the header's ``source``, else
``pack:<file name>``). The judged-against fields of a trace (``seed``, ``reason``,
``base_metric`` ... ``threshold``) travel like any other field and are checked by the same
rules as everywhere (``ExperimentCreate``: counts in 0..2**31-1, finite numbers).
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, Union, get_args, get_origin

from pydantic import ValidationError

from memory.base import Store
from memory.errors import InvalidInput
from memory.models import (
    MAX_JSON_DEPTH,
    UNPACKED_ROLES,
    ExperimentCreate,
    ExperimentPublic,
    FindingCreate,
    FindingPublic,
    ImportResult,
    Role,
    TraceQuery,
)

PACK_VERSION = 1
HEADER_KEY = "labswarm_pack"
HEADER_FIELDS = {HEADER_KEY, "name", "description", "created_at", "records", "source"}

TRACE_FIELDS = set(ExperimentCreate.model_fields)
FINDING_FIELDS = set(FindingCreate.model_fields)
# (kind, field) that must be present but may be empty
NON_EMPTY_OPTIONAL = {("trace", "source"), ("trace", "hardware"), ("finding", "hardware")}
REQUIRED = {
    "trace": ("task", "fingerprint", "status", "source", "hardware"),
    "finding": ("change", "outcome", "source", "hardware"),
}


@dataclass
class Pack:
    name: str
    header: dict[str, Any]
    traces: list[ExperimentCreate] = field(default_factory=list)
    findings: list[FindingCreate] = field(default_factory=list)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number in a pack (JSON has no {name})")


def _json_kinds(annotation: Any) -> set[type]:
    """The JSON value types a field of this annotation accepts from a pack (strict: no
    ``true`` for a number, no ``"1.5"`` for a float)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_json_kinds(a) for a in get_args(annotation)))
    if annotation is type(None) or annotation is None:
        return {type(None)}
    if origin is typing.Literal or annotation is str or annotation is datetime:
        return {str}
    if isinstance(annotation, type) and issubclass(annotation, str):  # enums
        return {str}
    if annotation is float:
        return {int, float}
    if annotation is int:
        return {int}
    if annotation is bool:
        return {bool}
    if annotation is dict or origin is dict:
        return {dict}
    if annotation is list or origin is list:
        return {list}
    return {str, int, float, bool, dict, list, type(None)}  # Any


_JSON_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    dict: "an object",
    list: "an array",
    type(None): "null",
}


def _check_types(body: dict[str, Any], model: Any, where: str) -> None:
    for name, value in body.items():
        kinds = _json_kinds(model.model_fields[name].annotation)
        if type(value) not in kinds:
            names = {_JSON_NAMES[k] for k in kinds if k is not int or float not in kinds}
            want = " or ".join(sorted(names))
            got = _JSON_NAMES.get(type(value), type(value).__name__)
            raise InvalidInput(f"{where}: field {name!r} must be {want}, got {got}")


def content_id(prefix: str, record: dict[str, Any]) -> str:
    """A stable id from a record's content (the record without its id)."""
    body = {k: v for k, v in record.items() if k != "id"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"{prefix}-{digest[:24]}"


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


def _where(path: str, line: int) -> str:
    return f"{path}:{line}"


def _header(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or HEADER_KEY not in obj:
        raise InvalidInput(f"{where}: the first line must be a header object with {HEADER_KEY!r}")
    version = obj[HEADER_KEY]
    if version != PACK_VERSION or isinstance(version, bool):
        raise InvalidInput(
            f"{where}: unsupported pack version {version!r} (this labswarm reads {PACK_VERSION})"
        )
    unknown = set(obj) - HEADER_FIELDS
    if unknown:
        raise InvalidInput(f"{where}: unknown header field(s) {sorted(unknown)}")
    if not isinstance(obj.get("name"), str) or not obj["name"].strip():
        raise InvalidInput(f"{where}: header field 'name' must be a non-empty string")
    for name in ("description", "created_at", "source"):
        if name in obj and not isinstance(obj[name], str):
            raise InvalidInput(f"{where}: header field {name!r} must be a string")
    records = obj.get("records")
    if records is not None and (not isinstance(records, int) or isinstance(records, bool)):
        raise InvalidInput(f"{where}: header field 'records' must be an integer")
    return obj


def _record(obj: Any, where: str, pack_name: str, source: str) -> ExperimentCreate | FindingCreate:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: a record must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in REQUIRED:
        raise InvalidInput(f"{where}: field 'type' must be 'trace' or 'finding', got {kind!r}")
    body = {k: v for k, v in obj.items() if k != "type"}
    allowed = TRACE_FIELDS if kind == "trace" else FINDING_FIELDS
    unknown = set(body) - allowed
    if unknown:
        raise InvalidInput(f"{where}: unknown {kind} field(s) {sorted(unknown)}")
    for name in REQUIRED[kind]:
        if name not in body or body[name] is None:
            raise InvalidInput(f"{where}: missing required field {name!r}")
        if not isinstance(body[name], str):
            raise InvalidInput(f"{where}: field {name!r} must be a string")
        # a trace's source may be "" (a run of the swarm named in the header)
        if not body[name].strip() and (kind, name) not in NON_EMPTY_OPTIONAL:
            raise InvalidInput(f"{where}: field {name!r} must not be empty")
    if "id" in body and (not isinstance(body["id"], str) or not body["id"]):
        raise InvalidInput(f"{where}: field 'id' must be a non-empty string")
    model = ExperimentCreate if kind == "trace" else FindingCreate
    _check_types(body, model, where)
    role = body.get("role") if kind == "trace" else None
    if role in UNPACKED_ROLES:
        raise InvalidInput(
            f"{where}: field 'role': a pack cannot declare role {role!r} ({UNPACKED_ROLES[role]}, "
            "so only runs this installation made itself count; use 'seed' or 'experiment')"
        )
    if kind == "finding":
        body.setdefault("pack", pack_name)
    body.setdefault("id", content_id("t" if kind == "trace" else "f", body))
    if kind == "trace" and not body["source"].strip():  # after the id: ids stay stable
        body["source"] = source
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{where}: field {loc!r}: {err['msg']}") from exc


def read_pack(stream: TextIO, path: str = "<pack>") -> Pack:
    """Parse and check a whole pack; raises ``InvalidInput("path:line: reason")``."""
    header: dict[str, Any] | None = None
    pack: Pack | None = None
    first_line: dict[str, int] = {}
    source = ""  # what imported traces without a source get (set by the header)
    count = 0
    last = 0
    for number, raw in enumerate(stream, start=1):
        last = number
        where = _where(path, number)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: malformed JSON: {exc.msg} (column {exc.colno})") from exc
        except ValueError as exc:  # NaN / Infinity / -Infinity
            raise InvalidInput(f"{where}: {exc}") from exc
        except RecursionError as exc:
            raise InvalidInput(
                f"{where}: nested too deeply (values may nest {MAX_JSON_DEPTH} levels)"
            ) from exc
        if header is None:
            header = _header(obj, where)
            pack = Pack(name=header["name"], header=header)
            source = str(header.get("source") or "").strip() or f"pack:{Path(path).name}"
            continue
        assert pack is not None
        try:
            record = _record(obj, where, pack.name, source)
        except RecursionError as exc:
            raise InvalidInput(
                f"{where}: nested too deeply (values may nest {MAX_JSON_DEPTH} levels)"
            ) from exc
        rid = str(record.id)
        if rid in first_line:
            raise InvalidInput(f"{where}: duplicate id {rid!r} (first on line {first_line[rid]})")
        first_line[rid] = number
        if isinstance(record, ExperimentCreate):
            pack.traces.append(record)
        else:
            pack.findings.append(record)
        count += 1
    if header is None or pack is None:
        raise InvalidInput(f"{_where(path, max(last, 1))}: empty pack (no header line)")
    expected = header.get("records")
    if expected is not None and expected != count:
        raise InvalidInput(
            f"{_where(path, last)}: header says {expected} records but the file has {count} "
            "(partial or edited file?)"
        )
    return pack


def load_pack(path: str | Path) -> Pack:
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as stream:
            return read_pack(stream, str(p))
    except FileNotFoundError as exc:
        raise InvalidInput(f"{p}: no such pack file") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{p}: not UTF-8 text ({exc.reason})") from exc


def import_pack(store: Store, path: str | Path) -> ImportResult:
    """Check the whole pack, then import it in one transaction (idempotent)."""
    pack = load_pack(path)
    return store.import_records(pack.traces, pack.findings)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def trace_record(trace: ExperimentPublic) -> dict[str, Any]:
    """A trace as a pack record, every field as stored (the judged-against fields too). A
    baseline or a confirmation is written as ``role: "seed"``: packs cannot declare them
    (``UNPACKED_ROLES``), and for whoever imports it, it is evidence."""
    record = {"type": "trace", **trace.model_dump(mode="json")}
    if trace.role.value in UNPACKED_ROLES:
        record["role"] = Role.seed.value
    return record


def finding_record(finding: FindingPublic) -> dict[str, Any]:
    data = finding.model_dump(mode="json", exclude={"created_at"})
    return {"type": "finding", **data}


def write_pack(
    stream: TextIO,
    name: str,
    traces: list[dict[str, Any]],
    findings: list[dict[str, Any]] | None = None,
    *,
    description: str = "",
    source: str = "",
) -> int:
    """Write a header and records; returns the number of records."""
    findings = findings or []
    header: dict[str, Any] = {
        HEADER_KEY: PACK_VERSION,
        "name": name,
        "description": description,
        "created_at": datetime.now(UTC).isoformat(),
        "records": len(traces) + len(findings),
    }
    if source:
        header["source"] = source
    stream.write(json.dumps(header, allow_nan=False) + "\n")
    for record in [*traces, *findings]:
        stream.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    return len(traces) + len(findings)


def insight_findings(
    store: Store, traces: list[ExperimentPublic], query: TraceQuery, source: str
) -> list[FindingCreate]:
    """The insights (``Store.insights``) of each task among ``traces``, on the query's
    hardware and budget when it names them, as findings carrying their evidence
    (``InsightReport.findings``): only those whose traces are all among ``traces``, so
    that every link resolves where the pack is imported."""
    ids = {t.id for t in traces}
    out: list[FindingCreate] = []
    for task in dict.fromkeys(t.task for t in traces):
        report = store.insights(task, query.hardware, query.budget_s)
        out.extend(
            f
            for insight, f in zip(
                report.ranked(), report.findings(f"insights: {source}"), strict=True
            )
            if set(insight.trace_ids) <= ids
        )
    return out


def export_pack(
    store: Store,
    target: str | Path | TextIO,
    *,
    name: str,
    query: TraceQuery | None = None,
    findings: bool = True,
    description: str = "",
    source: str = "",
) -> int:
    """Export the traces matching ``query`` (all if None) and, with ``findings``, the
    findings of the same task and the insights of the exported traces' tasks
    (``insight_findings``), as a pack written to ``target`` (a file path, replaced
    atomically, or an open text stream); records are written exactly as stored, so an
    import into an empty store gives the same traces. Returns the number of records."""
    query = query or TraceQuery()
    exported = store.every_trace(query)
    traces = [trace_record(t) for t in exported]
    found = []
    source = source or repr(store)
    if findings:
        found = [finding_record(f) for f in store.every_finding(query.task)]
        have = {f["id"] for f in found}
        for finding in insight_findings(store, exported, query, source):
            if finding.id not in have:
                # no "pack": the importer names the pack it came from
                body = finding.model_dump(mode="json", exclude={"pack"})
                found.append({"type": "finding", **body})
    if not isinstance(target, str | Path):
        return write_pack(target, name, traces, found, description=description, source=source)
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        n = write_pack(stream, name, traces, found, description=description, source=source)
    tmp.replace(out)
    return n
