"""Seeded data for the server tests: the Karpathy pack (seeds/karpathy-h100-mar8.jsonl)
plus a small swarm of our own with known lineage, agents, claims and a crash.

The own swarm lives in task ``LINEAGE_TASK`` so its exact shape can be asserted while
the pack's task is checked against the pack file itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory.base import Store
from memory.models import (
    AgentCreate,
    ClaimCreate,
    ExperimentCreate,
    FindingCreate,
    Role,
    Status,
    SwarmCreate,
)

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "seeds" / "karpathy-h100-mar8.jsonl"

LINEAGE_TASK = "server-test-gpt"
SWARM_ID = "swarm-server-test"
T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)

# (id, parent, agent, status, metric, hypothesis, knob, old, new)
RUNS = [
    ("root", None, "a0", "keep", 1.000, "baseline: unmodified train.py", None, None, None),
    (
        "lr-up",
        "root",
        "a0",
        "keep",
        0.980,
        "raise the matrix learning rate",
        "MATRIX_LR",
        0.04,
        0.05,
    ),
    ("wd", "lr-up", "a1", "discard", 0.990, "weight decay on embeddings", "WEIGHT_DECAY", 0, 0.1),
    ("depth", "lr-up", "a1", "keep", 0.960, "make the model deeper: 8 layers", "DEPTH", 6, 8),
    ("oom", "depth", "a0", "crash", None, "double the batch size", "BATCH_SIZE", 64, 128),
    ("warm", "depth", "a1", "keep", 0.955, "longer learning rate warmup", "WARMUP", 0.0, 0.05),
    ("swiglu", "warm", "a0", "discard", 0.957, "swap ReLU squared for SwiGLU", None, None, None),
    ("slow", "warm", "a1", "timeout", None, "quadruple the sequence length", "SEQ_LEN", 256, 1024),
]


def diff_for(knob: str | None, old: object, new: object, hypothesis: str) -> str:
    if knob is None:
        return (
            "--- a/train.py\n+++ b/train.py\n@@ -40,3 +40,3 @@\n"
            "-        x = F.relu(x).square()\n+        x = F.silu(self.gate(x)) * x\n"
        )
    return (
        f"--- a/train.py\n+++ b/train.py\n@@ -12,1 +12,1 @@\n"
        f"-{knob} = {old}  # {hypothesis}\n+{knob} = {new}  # {hypothesis}\n"
    )


def own_traces() -> list[ExperimentCreate]:
    traces = []
    for i, (tid, parent, agent, status, metric, hyp, knob, old, new) in enumerate(RUNS):
        hardware = "1xH100" if i % 4 != 3 else "cpu"
        traces.append(
            ExperimentCreate(
                id=tid,
                task=LINEAGE_TASK,
                swarm_id=SWARM_ID,
                agent_id=f"{SWARM_ID}/{agent}",
                parent_id=parent,
                hypothesis=hyp,
                diff=diff_for(knob, old, new, hyp),
                knobs={knob: [old, new]} if knob else {},
                fingerprint=f"fp-{tid}",
                status=Status(status),
                metric=metric,
                memory_gb=40.0 + i,
                resources={"num_steps": 900 + i, "peak_memory_mb": 40_000 + i},
                log_tail=f"step 900 | loss 3.{i}\n---\nval_bpb: {metric}\n",
                error="CUDA out of memory" if status == "crash" else "",
                device="cuda:0",
                hardware=hardware,
                created_at=T0 + timedelta(minutes=6 * i),
                duration_s=300.0,
                budget_s=600.0 if tid == "warm" else 300.0,
            )
        )
    return traces


def seed(store: Store) -> dict[str, int]:
    """Fill ``store``; returns how many records of each kind came from the pack."""
    pack = {"traces": 0, "findings": 0}
    if PACK.exists():
        from memory.packs import import_pack  # the memory package's pack reader

        result = import_pack(store, PACK)
        pack = {"traces": result.added_traces, "findings": result.added_findings}
    store.import_records(
        own_traces(),
        [
            FindingCreate(
                id="finding-rope",
                task=LINEAGE_TASK,
                change="rotary embeddings base 10000 -> 50000",
                outcome="discard",
                before=0.96,
                after=0.962,
                hardware="1xH100",
                source="server test",
            )
        ],
    )
    store.upsert_swarm(SwarmCreate(id=SWARM_ID, task=LINEAGE_TASK, name="server test"))
    for name in ("a0", "a1"):
        store.upsert_agent(
            AgentCreate(swarm_id=SWARM_ID, name=name, device="cuda:0", status="running")
        )
    store.claim(
        ClaimCreate(
            task=LINEAGE_TASK,
            fingerprint="fp-inflight",
            swarm_id=SWARM_ID,
            agent_id=f"{SWARM_ID}/a0",
            parent_id="warm",
            hypothesis="try a cosine schedule to zero",
            ttl_seconds=24 * 3600,
        )
    )
    return pack


# ---------------------------------------------------------------------------
# a judged swarm (issue 13): replicates, confirmations, re-measures of each kept program
# (only these and the replicates make a champion) and what each verdict used
# ---------------------------------------------------------------------------

JUDGED_TASK = "server-test-judged"
JUDGED_SWARM = "swarm-judged"

# (id, parent, role, fingerprint, status, metric, hardware, budget_s)
JUDGED_RUNS = [
    ("j-root", None, "baseline", "fp-root", "keep", 1.000, "1xH100", 300.0),
    ("j-root2", None, "baseline", "fp-root", "keep", 1.004, "1xH100", 300.0),
    ("j-root3", None, "baseline", "fp-root", "keep", 0.996, "1xH100", 300.0),
    ("j-lr", "j-root", "experiment", "fp-lr", "keep", 0.980, "1xH100", 300.0),
    ("j-lr+c", "j-lr", "confirmation", "fp-lr", "keep", 0.982, "1xH100", 300.0),
    ("r1-j-lr", "j-lr", "remeasure", "fp-lr", "keep", 0.980, "1xH100", 300.0),
    ("r2-j-lr", "j-lr", "remeasure", "fp-lr", "keep", 0.982, "1xH100", 300.0),
    ("j-lucky", "j-root", "experiment", "fp-lucky", "keep", 0.900, "1xH100", 300.0),
    ("j-depth", "j-root", "experiment", "fp-depth", "keep", 0.960, "cpu", 300.0),
    ("j-depth+c", "j-depth", "confirmation", "fp-depth", "keep", 0.962, "cpu", 300.0),
    ("r1-j-depth", "j-depth", "remeasure", "fp-depth", "keep", 0.960, "cpu", 300.0),
    ("r2-j-depth", "j-depth", "remeasure", "fp-depth", "keep", 0.962, "cpu", 300.0),
    ("j-warm", "j-lr", "experiment", "fp-warm", "keep", 0.940, "1xH100", 600.0),
    ("j-warm+c", "j-warm", "confirmation", "fp-warm", "keep", 0.942, "1xH100", 600.0),
    ("r1-j-warm", "j-warm", "remeasure", "fp-warm", "keep", 0.940, "1xH100", 600.0),
    ("r2-j-warm", "j-warm", "remeasure", "fp-warm", "keep", 0.942, "1xH100", 600.0),
    ("j-wd", "j-lr", "experiment", "fp-wd", "discard", 0.985, "1xH100", 300.0),
]


def judged_traces() -> list[ExperimentCreate]:
    """The judged swarm's traces, each recording what its verdict was judged against
    (the base's mean over ``base_n`` runs, the noise, the margin, its seed and reason)."""
    traces = []
    for i, (tid, parent, role, fp, status, metric, hardware, budget) in enumerate(JUDGED_RUNS):
        judged: dict[str, object] = {"seed": 1000 + i, "reason": "baseline replicate: ran"}
        if role == "remeasure":
            judged = {"seed": 1000 + i, "reason": "re-measure: ran"}
        elif role != "baseline":
            runs = 2 if tid in ("j-lr", "j-lr+c", "j-depth", "j-depth+c") else 1
            judged = {
                "seed": 1000 + i,
                "reason": f"{status}: judged against {parent} over {runs} run(s)",
                "base_metric": 1.0,
                "base_n": 3,
                "judged_metric": metric,
                "judged_n": runs,
                "noise_sd": 0.004,
                "noise_n": 3,
                "threshold": 0.0123,
            }
        traces.append(
            ExperimentCreate(
                id=tid,
                task=JUDGED_TASK,
                swarm_id=JUDGED_SWARM,
                agent_id=f"{JUDGED_SWARM}/a0",
                parent_id=parent,
                role=Role(role),
                hypothesis=f"run {tid}",
                fingerprint=fp,
                status=Status(status),
                metric=metric,
                device="cuda:0" if hardware != "cpu" else "cpu[0-3]",
                hardware=hardware,
                budget_s=budget,
                created_at=T0 + timedelta(minutes=5 * i),
                **judged,  # type: ignore[arg-type]
            )
        )
    return traces
