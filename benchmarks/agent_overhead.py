"""Platform overhead per experiment: recall + propose + check + record, no training run.

Fills a fresh embedded memory with N traces of the built-in task (default 10,000: knob
changes of the real ``train.py``, keeps/discards/crashes/timeouts, with lineage), then
drives the real graph nodes of one agent with the builtin proposer for E experiments,
with a synthetic run outcome in place of the training run. Prints per-phase p50/p95 and
the share of a 300 s budget. Targets: <= 0.5 s per experiment, <= 1 % of 300 s.

    .venv/bin/python benchmarks/agent_overhead.py                  # MiniLM, 10k traces
    .venv/bin/python benchmarks/agent_overhead.py --embedder hash --traces 2000
    .venv/bin/python benchmarks/agent_overhead.py --memory /tmp/bench-mem   # reuse a fill
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from langgraph.runtime import Runtime

from agents.context import AgentContext
from agents.devices import cpu_devices
from agents.execute import Bench, Outcome
from agents.knobs import set_knobs
from agents.library import ProgramLibrary
from agents.nodes import check, judge_node, propose, recall, record
from agents.program import Program, diff
from agents.proposers.builtin import BuiltinProposer, _round, search_space, tunable_knobs
from agents.runner import RunResult
from agents.state import AgentState
from agents.task import load_task
from agents.workspace import Workspace, protected_hashes
from memory import get_store
from memory.models import ExperimentCreate, Role, Status, TraceQuery, new_id, utcnow

BUDGET = 300.0
# The filled traces belong to the benchmark's swarm: champion, program metrics and program
# rebuilding trust only a swarm's own runs, as in a long-running swarm with this history.
SWARM_ID = "bench-overhead"


def fill(store, task, root: Program, hardware: str, n: int, seed: int = 0) -> str:
    """``n`` traces with real knob changes and lineage, all of :data:`SWARM_ID`;
    returns the baseline's id."""
    rng = random.Random(seed)
    knobs = tunable_knobs(task, root, "cpu")
    dists = search_space(task, root, "cpu")
    base_id = new_id()
    rows = [
        ExperimentCreate(
            id=base_id,
            task=task.name,
            role=Role.baseline,
            fingerprint=root.fingerprint,
            status=Status.keep,
            metric=1.80,
            metric_name=task.metric_name,
            hypothesis="baseline",
            hardware=hardware,
            resources={"budget_s": BUDGET},
            swarm_id=SWARM_ID,
            agent_id=f"{SWARM_ID}/baseline",
        )
    ]
    statuses = [Status.discard] * 14 + [Status.keep] * 3 + [Status.crash, Status.timeout]
    keeps = [(base_id, root, 1.80)]
    i = 0
    while len(rows) < n:
        i += 1
        parent_id, parent, parent_metric = rng.choice(keeps[-20:])
        k = rng.choice(knobs)
        dist = dists[k.name]
        if hasattr(dist, "choices"):
            value = rng.choice(dist.choices)
        elif getattr(dist, "log", False):
            value = dist.low * (dist.high / dist.low) ** rng.random()
        else:
            value = dist.low + (dist.high - dist.low) * rng.random()
        value = _round(value, k.kind)
        old = next(x.value for x in knobs if x.name == k.name)
        program = set_knobs(parent, {k.name: value}, task.knobs)
        if program.fingerprint == parent.fingerprint:
            continue
        status = rng.choice(statuses)
        metric = (
            None
            if status in (Status.crash, Status.timeout)
            else parent_metric + rng.gauss(0.01, 0.02)
        )
        if status == Status.keep and metric is not None:
            metric = parent_metric - abs(rng.gauss(0.01, 0.005))
        tid = new_id()
        rows.append(
            ExperimentCreate(
                id=tid,
                task=task.name,
                parent_id=parent_id,
                role=Role.experiment,
                hypothesis=f"{k.name} {old} -> {value} (trial {i})",
                diff=diff(parent, program),
                knobs={k.name: [old, value]},
                fingerprint=program.fingerprint,
                status=status,
                metric=metric,
                metric_name=task.metric_name,
                hardware=hardware,
                error="exit code 1: RuntimeError" if status == Status.crash else "",
                resources={"budget_s": BUDGET},
                swarm_id=SWARM_ID,
                agent_id=f"{SWARM_ID}/agent-{i % 4 + 1}",
            )
        )
        if status == Status.keep and metric is not None:  # a keep always has its metric
            keeps.append((tid, program, metric))
    for start in range(0, len(rows), 1000):
        store.import_records(rows[start : start + 1000], [])
    return base_id


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=10_000)
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--embedder", default="minilm", help="minilm (default) or hash")
    ap.add_argument("--memory", help="memory directory (filled once, then reused)")
    args = ap.parse_args()

    task = load_task(None)
    root = Program.read(task.root, task.editable)
    device = cpu_devices(1)[0]
    tmp = tempfile.TemporaryDirectory(prefix="labswarm-bench-")
    mem = Path(args.memory) if args.memory else Path(tmp.name) / "memory"
    store = get_store(mem, embedder=args.embedder)
    have = store.count(TraceQuery(task=task.name))
    t0 = time.perf_counter()
    if have < args.traces:
        fill(store, task, root, device.hardware, args.traces - have, seed=have)
        print(
            f"filled {store.count(TraceQuery(task=task.name))} traces "
            f"in {time.perf_counter() - t0:.1f} s ({args.embedder} embeddings)"
        )
    total = store.count(TraceQuery(task=task.name))
    base = store.query_traces(
        TraceQuery(task=task.name, role=[Role.baseline], sort="created_at", limit=1)
    ).data[0]

    home = Path(tmp.name)
    bench = Bench(
        task=task,
        workspace=Workspace(task, home / "work"),
        device=device,
        budget=BUDGET,
        logs_dir=home / "logs",
        home=home,
        expected=protected_hashes(task),
    )
    ctx = AgentContext(
        store=store,
        proposer=BuiltinProposer(task, root, "cpu", device.hardware, seed=1),
        bench=bench,
        library=ProgramLibrary(store, root, SWARM_ID),
        swarm_id=SWARM_ID,
        agent_name="agent-0",
        noise=0.01,
    )
    runtime = Runtime(context=ctx)
    # the nodes return their updates as plain dicts (LangGraph merges them into the state)
    state: AgentState = {"base_id": base.id, "experiments": 0}
    phases: dict[str, list[float]] = {"recall": [], "propose": [], "check": [], "record": []}
    totals: list[float] = []
    first_propose = None
    rng = random.Random(7)
    for i in range(args.experiments + 1):
        times = {}
        t = time.perf_counter()
        state.update(cast(AgentState, recall(state, runtime)))
        times["recall"] = time.perf_counter() - t
        t = time.perf_counter()
        state.update(cast(AgentState, propose(state, runtime)))
        times["propose"] = time.perf_counter() - t
        t = time.perf_counter()
        state.update(cast(AgentState, check(state, runtime)))
        times["check"] = time.perf_counter() - t
        if not state.get("claim_id"):
            print(f"experiment {i}: refused ({state.get('reason')}); counted as is")
            t = time.perf_counter()
        else:  # a synthetic outcome stands in for the training run
            base_metric = state.get("base_metric") or 1.8
            state["outcome"] = Outcome(
                result=RunResult(
                    status="ok",
                    returncode=0,
                    metric=base_metric + rng.gauss(0.0, 0.02),
                    summary={"val_bpb": 1.8},
                    duration_s=BUDGET,
                ),
                resources={},
                started_at=utcnow(),
                finished_at=utcnow(),
            )
            state.update(cast(AgentState, judge_node(state, runtime)))
            t = time.perf_counter()
            state.update(cast(AgentState, record(state, runtime)))
        times["record"] = time.perf_counter() - t
        if i == 0:
            first_propose = times["propose"]
            continue  # the first proposal warms the optimiser up with every trace
        for k, v in times.items():
            phases[k].append(v)
        totals.append(sum(times.values()))

    print(
        f"\nagent overhead per experiment, builtin proposer, {total} traces in memory, "
        f"{args.embedder} embeddings, {args.experiments} experiments"
    )
    print(f"{'phase':10s} {'p50 ms':>9s} {'p95 ms':>9s} {'mean ms':>9s}")
    for phase, samples in phases.items():
        print(
            f"{phase:10s} {pct(samples, 0.5) * 1e3:9.1f} {pct(samples, 0.95) * 1e3:9.1f} "
            f"{statistics.fmean(samples) * 1e3:9.1f}"
        )
    p50, p95, mean = pct(totals, 0.5), pct(totals, 0.95), statistics.fmean(totals)
    print(f"{'total':10s} {p50 * 1e3:9.1f} {p95 * 1e3:9.1f} {mean * 1e3:9.1f}")
    print(f"first proposal (warm start from {total} traces): {first_propose:.2f} s, once per agent")
    print(
        f"share of a {BUDGET:.0f} s budget: mean {mean / BUDGET * 100:.3f} %  "
        f"(targets: <= 0.5 s -> {'met' if p95 <= 0.5 else 'MISSED'}, "
        f"<= 1 % -> {'met' if mean / BUDGET <= 0.01 else 'MISSED'})"
    )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
