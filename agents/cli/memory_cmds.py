"""Memory subcommands of ``labswarm``: seed, export, search, show, insights,
memory reindex|stats.

    labswarm seed seeds/karpathy-h100-mar8.jsonl
    labswarm export --task autoresearch -o results.tsv        # or .png, or .jsonl (a pack)
    labswarm search "lower the learning rate" --status keep
    labswarm show ID
    labswarm insights [--task autoresearch] [--hardware H] [--budget B] [--json]
    labswarm memory stats                                     # counts, and the tasks held
    labswarm memory reindex [--full]

Every command takes ``--memory PATH_OR_URL`` (default ``$LABSWARM_MEMORY``, else the embedded
store in ``$LABSWARM_HOME`` or ``./.labswarm``): a directory, ``sqlite:///file``,
``postgresql://...?chroma=http://host:port`` or ``http(s)://`` for a labswarm server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.cli.options import at_least, memory_arg, open_store, positive_float
from memory.models import MAX_PAGE

if TYPE_CHECKING:
    from memory.models import Stats


def _statuses(text: str | None) -> list[Any] | None:
    from memory import InvalidInput, Status

    if not text:
        return None
    try:
        return [Status(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise InvalidInput(f"--status: {exc}; choose from {[s.value for s in Status]}") from exc


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------


def cmd_seed(args: argparse.Namespace) -> int:
    from memory.packs import load_pack

    packs = [load_pack(p) for p in args.packs]  # check every file before importing any
    with open_store(args) as store:
        for path, pack in zip(args.packs, packs, strict=True):
            res = store.import_records(pack.traces, pack.findings)
            print(
                f"{path}: pack {pack.name!r}: added {res.added_traces} traces and "
                f"{res.added_findings} findings, skipped {res.skipped} already present"
            )
    return 0


def _query(args: argparse.Namespace) -> Any:
    from memory import TraceQuery

    return TraceQuery(
        task=args.task,
        swarm_id=args.swarm,
        hardware=args.hardware,
        status=_statuses(args.status),
        sort="created_at",
    )


_FORMATS = {".tsv": "tsv", ".png": "png", ".jsonl": "pack", ".json": "pack"}  # by -o suffix


def cmd_export(args: argparse.Namespace) -> int:
    from memory.exports import progress_png, results_tsv, write_results_tsv
    from memory.packs import export_pack

    fmt = args.format
    out = args.output
    if fmt is None:
        suffix = Path(out).suffix.lower() if out and out != "-" else ".tsv"
        fmt = _FORMATS.get(suffix)
        if fmt is None:  # "results.csv" would be written tab-separated
            raise ValueError(
                f"-o: {out!r} has no suffix of a format labswarm writes "
                f"({', '.join(_FORMATS)}); name one, or give --format"
            )
    with open_store(args) as store:
        query = _query(args)
        if fmt == "pack":
            if not out or out == "-":
                raise ValueError("export --format pack needs -o FILE.jsonl")
            name = args.name or Path(out).stem
            n = export_pack(store, out, name=name, query=query, findings=not args.no_findings)
            print(f"wrote pack {name!r} with {n} records to {out}")
            return 0
        traces = store.every_trace(query)
        # memory's champion of the exported runs' task (one task): drawn kept when the
        # finals chose it (memory.models.crowned_run)
        tasks = {t.task for t in traces}
        champ = (
            store.champion(tasks.pop(), args.hardware, swarm_id=args.swarm)
            if len(tasks) == 1
            else None
        )
        champion = champ.fingerprint if champ is not None else None
        if fmt == "png":
            if not out or out == "-":
                raise ValueError("export --format png needs -o FILE.png")
            progress_png(traces, out, title=args.title or "", champion=champion)
            print(f"wrote progress chart of {len(traces)} traces to {out}")
        elif not out or out == "-":
            sys.stdout.write(results_tsv(traces, champion=champion))
        else:
            write_results_tsv(traces, out, champion=champion)
            print(f"wrote {len(traces)} traces to {out}")
    return 0


def _trace_line(t: Any) -> str:
    metric = "-" if t.metric is None else f"{t.metric:.6f}"
    return f"{t.status.value:<9} {t.metric_name}={metric:<10} {t.hypothesis[:90]}"


def cmd_search(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else ["trace", "finding"]
    with open_store(args) as store:
        hits = store.search(
            args.text, kinds=kinds, task=args.task, status=_statuses(args.status), limit=args.k
        )
    if args.json:
        print(json.dumps([h.model_dump(mode="json") for h in hits], indent=2))
        return 0
    if not hits:
        print("no matches")
    for h in hits:
        if h.experiment is not None:
            print(f"{h.score:.3f}  trace   {h.id}  {_trace_line(h.experiment)}")
        elif h.finding is not None:
            f = h.finding
            print(f"{h.score:.3f}  finding {h.id}  {f.outcome:<9} {f.change[:90]} [{f.hardware}]")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        lineage = store.lineage(args.id)
    t = lineage.experiment
    if args.json:
        print(json.dumps(lineage.model_dump(mode="json"), indent=2))
        return 0
    print(f"experiment {t.id}  task {t.task}  created {t.created_at.isoformat()}")
    print(f"  status      {t.status.value}   {t.metric_name} = {t.metric}  ({t.direction})")
    print(f"  hypothesis  {t.hypothesis}")
    print(f"  fingerprint {t.fingerprint}   role {t.role.value}")
    for label, value in (
        ("swarm", t.swarm_id),
        ("agent", t.agent_id),
        ("parent", t.parent_id),
        ("device", t.device),
        ("hardware", t.hardware),
        ("memory_gb", t.memory_gb),
        ("duration_s", t.duration_s),
        ("source", t.source),
        ("error", t.error),
    ):
        if value not in (None, ""):
            print(f"  {label:<11} {value}")
    if t.knobs:
        print("  knobs       " + ", ".join(f"{k}: {v}" for k, v in t.knobs.items()))
    if t.resources:
        print("  resources   " + ", ".join(f"{k}={v}" for k, v in t.resources.items()))
    print(f"  ancestors   {len(lineage.ancestors)}   descendants {len(lineage.descendants)}")
    for a in lineage.ancestors[-3:]:
        print(f"    ^ {a.id}  {_trace_line(a)}")
    if t.diff:
        print("--- diff ---")
        print(t.diff.rstrip())
    if t.log_tail:
        print("--- log tail ---")
        print(t.log_tail.rstrip())
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        n = store.reindex(full=args.full)
        rows = store.count() + store.query_findings(limit=1).count
        items = store.index_count()
    print(f"indexed {n} rows; the index holds {items} items for {rows} SQL rows")
    return 0 if items == rows else 1


def cmd_stats(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        st = store.stats(task=args.task, swarm_id=args.swarm)
    if args.json:
        print(json.dumps(st.model_dump(mode="json"), indent=2))
        return 0
    print(f"traces       {st.total}")
    for status, n in sorted(st.by_status.items(), key=lambda kv: -kv[1]):
        print(f"  {status:<11} {n}")
    rate = "-" if st.keep_rate is None else f"{st.keep_rate:.1%}"
    per_hour = "-" if st.experiments_per_hour is None else f"{st.experiments_per_hour:.1f}"
    print(f"keep rate    {rate}  ({st.kept_changes} changes kept by a verdict)")
    print(f"duplicates   {st.duplicates_refused} refused")
    print(f"per hour     {per_hour} experiments")
    print(f"findings     {st.findings}")
    print(f"claims       {st.active_claims} active")
    if st.first_at and st.last_at:
        print(f"span         {st.first_at.isoformat()} .. {st.last_at.isoformat()}")
    for i, (name, n) in enumerate(st.tasks.items()):
        print(f"{'tasks' if i == 0 else '':<12} {name}  {n} traces")
    return 0


def _tasks_line(tasks: dict[str, int]) -> str:
    """``'a' (12 traces), 'b' (3 traces)``: the task names a memory holds."""
    return ", ".join(f"{name!r} ({n} trace{'s' if n != 1 else ''})" for name, n in tasks.items())


def _the_task(given: str | None, stats: Stats) -> str:
    """The task ``insights`` reads: ``--task``, else the memory's only task; a memory
    with several (or none) names them in the error."""
    from memory import InvalidInput

    tasks = stats.tasks
    if given is not None:
        return given
    if len(tasks) == 1:
        return next(iter(tasks))
    if not tasks and stats.total:  # a server older than Stats.tasks
        raise InvalidInput("--task: required (this server does not list its tasks)")
    if not tasks:
        raise InvalidInput("--task: this memory holds no traces yet")
    raise InvalidInput(f"--task: this memory holds several tasks, name one: {_tasks_line(tasks)}")


def cmd_insights(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        stats = store.stats()
        report = store.insights(_the_task(args.task, stats), args.hardware, args.budget)
    tasks = stats.tasks
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    held = tasks.get(report.task, 0)
    # trusted traces only grow, so more held before the report than read by it means some
    # are imported (packs, other installations): evidence for recall, never for insights
    left_out = f" of the {held} held; imported ones are left out" if held > report.traces else ""
    print(f"insights of task {report.task!r}: {report.traces} trusted traces read{left_out}")
    ranked = report.ranked()
    if not ranked and not report.imported:
        if tasks and report.task not in tasks:
            print(f"no trace of task {report.task!r} in this memory; it holds {_tasks_line(tasks)}")
        else:
            where = [f"hardware {args.hardware}"] if args.hardware is not None else []
            where += [f"budget {args.budget:g}"] if args.budget is not None else []
            on = f" on {' and '.join(where)}" if where else ""
            print(f"nothing yet: no judged experiment of this task{on} to learn from")
    for insight in ranked:
        budget = f" {insight.budget_s:g} s" if insight.budget_s is not None else ""
        print(f"[{insight.hardware or '-'}{budget}] {insight.line(ids=False)}")
        shown = insight.trace_ids[-10:]
        more = len(insight.trace_ids) - len(shown)
        print("    traces: " + " ".join(shown) + (f" (+{more} older)" if more else ""))
    for imp in report.imported:
        print(f"(imported from {imp.pack or imp.source}) {imp.insight.line()}")
    return 0


# ---------------------------------------------------------------------------
# parsers
# ---------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("seed", help="import memory packs (JSONL) into the memory")
    p.add_argument("packs", nargs="+", metavar="PACK", help="pack file(s), e.g. seeds/*.jsonl")
    memory_arg(p)
    p.set_defaults(func=cmd_seed)

    p = subparsers.add_parser(
        "export", help="export traces as results.tsv, a progress chart PNG or a pack"
    )
    p.add_argument("-o", "--output", help="output file (.tsv, .png, .jsonl); default stdout TSV")
    p.add_argument(
        "--format", choices=sorted(set(_FORMATS.values())), help="default: from -o suffix"
    )
    p.add_argument("--task", help="only this task")
    p.add_argument("--swarm", help="only this swarm id")
    p.add_argument("--hardware", help="only this hardware class")
    p.add_argument("--status", help="only these statuses, comma-separated")
    p.add_argument("--name", help="pack name (default: the output file name)")
    p.add_argument("--title", help="chart title")
    p.add_argument("--no-findings", action="store_true", help="packs: traces only")
    memory_arg(p)
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("search", help="semantic search over traces and findings")
    p.add_argument("text", help="what to look for, in words")
    p.add_argument("--task", help="only this task")
    p.add_argument("--status", help="only traces with these statuses, comma-separated")
    p.add_argument("--kind", choices=["trace", "finding"], help="only traces or findings")
    p.add_argument(
        "-k",
        type=at_least(1, f"one search returns at most {MAX_PAGE} results", most=MAX_PAGE),
        default=10,
        help="number of results (default 10)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    memory_arg(p)
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser("show", help="show one experiment with its lineage")
    p.add_argument("id", help="experiment id")
    p.add_argument("--json", action="store_true", help="print JSON")
    memory_arg(p)
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser(
        "insights", help="what the runs of a task say: per knob move and per idea, with traces"
    )
    p.add_argument("--task", help="the task (default: the memory's only task)")
    p.add_argument("--hardware", help="only this hardware class")
    p.add_argument("--budget", type=positive_float, help="only this run budget (seconds)")
    p.add_argument("--json", action="store_true", help="print JSON")
    memory_arg(p)
    p.set_defaults(func=cmd_insights)

    mem = subparsers.add_parser("memory", help="memory maintenance: stats, reindex")
    msub = mem.add_subparsers(dest="memory_command", metavar="ACTION")
    p = msub.add_parser("reindex", help="index rows missing from the vector index")
    p.add_argument("--full", action="store_true", help="drop and rebuild the index from SQL")
    memory_arg(p)
    p.set_defaults(func=cmd_reindex)
    p = msub.add_parser("stats", help="counts by status, keep rate, duplicates, rate")
    p.add_argument("--task", help="only this task")
    p.add_argument("--swarm", help="only this swarm id")
    p.add_argument("--json", action="store_true", help="print JSON")
    memory_arg(p)
    p.set_defaults(func=cmd_stats)
