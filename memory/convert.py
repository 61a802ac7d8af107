"""Convert other people's experiment logs into labswarm packs.

    python -m memory.convert results-tsv karpathy-h100-mar8-results.tsv \\
        -o seeds/karpathy-h100-mar8.jsonl --name karpathy-h100-mar8 --hardware 1xH100 \\
        --source "karpathy/autoresearch branch exp/H100/mar8 (PR #44) results.tsv"
    python -m memory.convert findings community-findings.jsonl \\
        -o seeds/autoresearch-community.jsonl --name autoresearch-community

``results-tsv`` reads autoresearch's ``results.tsv`` (``commit, val_bpb, memory_gb, status,
description``): one trace per row, ``role=seed``, the commit as fingerprint, the description
as hypothesis, ``val_bpb``/``memory_gb`` of ``0`` as "no value" (crashes), and as parent the
latest ``keep`` above the row (autoresearch always branches from its last keep). The TSV has
no timestamps: rows get ``created_at = --start + (row - 1) * --spacing`` minutes only to keep
their order; ``resources.row`` is the row number. ``findings`` reads one JSON object per line
(``change, outcome, metric, before, after, hardware, source``). Errors say ``file:line``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memory.errors import InvalidInput
from memory.models import FindingOutcome
from memory.packs import content_id, write_pack

TSV_COLUMNS = ["commit", "val_bpb", "memory_gb", "status", "description"]
STATUSES = {"keep", "discard", "crash"}


def _number(text: str, where: str, column: str) -> float | None:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidInput(f"{where}: column {column!r} is not a number: {text!r}") from exc
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: column {column!r} must be a finite number, got {text!r}")
    return None if value == 0.0 else value


def convert_results_tsv(
    path: str | Path,
    *,
    task: str,
    hardware: str,
    source: str,
    start: datetime,
    spacing_min: float = 5.0,
    metric_name: str = "val_bpb",
) -> list[dict[str, Any]]:
    """Trace records of an autoresearch ``results.tsv`` (see the module docstring)."""
    p = Path(path)
    records: list[dict[str, Any]] = []
    last_keep: str | None = None
    with open(p, encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != TSV_COLUMNS:
            raise InvalidInput(f"{p}:1: expected the columns {TSV_COLUMNS}, got {header}")
        for number, row in enumerate(reader, start=2):
            where = f"{p}:{number}"
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(TSV_COLUMNS):
                raise InvalidInput(f"{where}: expected 5 tab-separated columns, got {len(row)}")
            commit, bpb, mem, status, description = (c.strip() for c in row)
            if status not in STATUSES:
                raise InvalidInput(f"{where}: status must be keep/discard/crash, got {status!r}")
            if not commit:
                raise InvalidInput(f"{where}: empty commit")
            metric = _number(bpb, where, "val_bpb")
            index = len(records)
            record: dict[str, Any] = {
                "type": "trace",
                "task": task,
                "role": "seed",
                "parent_id": last_keep,
                "hypothesis": description,
                "fingerprint": commit,
                "status": status,
                "metric_name": metric_name,
                "metric": None if status == "crash" else metric,
                "direction": "minimize",
                "memory_gb": _number(mem, where, "memory_gb"),
                "resources": {"row": index + 1},
                "error": "crashed (no val_bpb)" if status == "crash" else "",
                "hardware": hardware,
                "source": f"{source}, row {index + 1}",
                "created_at": (start + timedelta(minutes=spacing_min * index)).isoformat(),
            }
            record["id"] = content_id("t", record)
            records.append(record)
            if status == "keep":
                last_keep = record["id"]
    if not records:
        raise InvalidInput(f"{p}: no rows")
    return records


OUTCOMES = typing.get_args(FindingOutcome)
FINDING_KEYS = {"change", "outcome", "metric", "before", "after", "hardware", "source"}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no {name})")


def convert_findings(path: str | Path, *, task: str, pack: str) -> list[dict[str, Any]]:
    """Finding records of a community-findings JSONL file."""
    p = Path(path)
    records: list[dict[str, Any]] = []
    with open(p, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            where = f"{p}:{number}"
            if not line.strip():
                continue
            try:
                obj = json.loads(line, parse_constant=_no_constant)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{where}: malformed JSON: {exc.msg}") from exc
            except (ValueError, RecursionError) as exc:
                raise InvalidInput(f"{where}: {exc}") from exc
            if not isinstance(obj, dict):
                raise InvalidInput(f"{where}: expected a JSON object")
            missing = {"change", "outcome", "hardware", "source"} - set(obj)
            if missing:
                raise InvalidInput(f"{where}: missing field(s) {sorted(missing)}")
            unknown = set(obj) - FINDING_KEYS
            if unknown:
                raise InvalidInput(f"{where}: unknown field(s) {sorted(unknown)}")
            if obj["outcome"] not in OUTCOMES:
                raise InvalidInput(f"{where}: outcome must be one of {OUTCOMES}")
            for key in ("before", "after"):
                value = obj.get(key)
                if value is not None and (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise InvalidInput(f"{where}: {key!r} must be a finite number or null")
            record: dict[str, Any] = {
                "type": "finding",
                "task": task,
                "change": obj["change"],
                "outcome": obj["outcome"],
                "metric_name": obj.get("metric") or "val_bpb",
                "before": obj.get("before"),
                "after": obj.get("after"),
                "hardware": obj["hardware"],
                "source": obj["source"],
                "pack": pack,
            }
            record["id"] = content_id("f", record)
            records.append(record)
    if not records:
        raise InvalidInput(f"{p}: no findings")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory.convert", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    tsv = sub.add_parser("results-tsv", help="autoresearch results.tsv -> pack of traces")
    tsv.add_argument("path")
    tsv.add_argument("--hardware", required=True, help="hardware class, e.g. 1xH100")
    tsv.add_argument("--source", required=True, help="where the log came from")
    tsv.add_argument("--start", default="2026-03-08T00:00:00+00:00", help="created_at of row 1")
    tsv.add_argument("--spacing", type=float, default=5.0, help="minutes between rows")
    fnd = sub.add_parser("findings", help="community findings JSONL -> pack of findings")
    fnd.add_argument("path")
    for p in (tsv, fnd):
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--name", required=True, help="pack name")
        p.add_argument("--task", default="autoresearch", help="task the records belong to")
        p.add_argument("--description", default="")
    args = parser.parse_args(argv)
    try:
        if args.kind == "results-tsv":
            start = datetime.fromisoformat(args.start)
            start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
            traces = convert_results_tsv(
                args.path,
                task=args.task,
                hardware=args.hardware,
                source=args.source,
                start=start,
                spacing_min=args.spacing,
            )
            findings: list[dict[str, Any]] = []
        else:
            traces = []
            findings = convert_findings(args.path, task=args.task, pack=args.name)
    except InvalidInput as exc:
        print(f"convert: error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as stream:
        n = write_pack(stream, args.name, traces, findings, description=args.description)
    print(f"wrote {n} records to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
