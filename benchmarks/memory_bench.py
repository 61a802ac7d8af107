"""Memory benchmark: insert throughput and filtered semantic recall latency at 100k traces.

    .venv/bin/python benchmarks/memory_bench.py                 # 100k traces, embedded store
    .venv/bin/python benchmarks/memory_bench.py --n 20000 --real 1000 --queries 100

How the 100k vectors are made (embedding 100k texts with MiniLM here would take ~18 min):
``--real`` distinct trace documents (hypotheses built from knob names, values and ideas
seen in autoresearch logs) are embedded with the real all-MiniLM-L6-v2 -- that rate is
timed and printed. Trace i then gets real vector ``i % real`` plus Gaussian noise
(sigma 0.02 per dimension, about 0.4 of the norm) and is renormalised, so that the index
holds 100k distinct vectors laid out like real ones. Queries are
real MiniLM embeddings of paraphrases; their embedding time is measured separately and
the search latency below excludes it (the store's embedder returns the precomputed vector).

Measured: bulk insert through ``import_records`` (SQL + Chroma, embedding excluded),
single ``add_trace`` calls, and ``Store.search`` with a task filter and with task+status
filters (keep ~15%, crash ~3%, keep+discard ~92%); p50/p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import ExperimentCreate, Status, get_store  # noqa: E402
from memory.embed import MiniLMEmbedder  # noqa: E402

KNOBS = [
    ("MATRIX_LR", 0.04),
    ("EMBEDDING_LR", 0.6),
    ("UNEMBEDDING_LR", 0.004),
    ("SCALAR_LR", 0.5),
    ("WEIGHT_DECAY", 0.2),
    ("WARMUP_RATIO", 0.0),
    ("WARMDOWN_RATIO", 0.5),
    ("FINAL_LR_FRAC", 0.0),
    ("DEPTH", 8),
    ("ASPECT_RATIO", 64),
    ("HEAD_DIM", 128),
    ("TOTAL_BATCH_SIZE", 524288),
    ("DEVICE_BATCH_SIZE", 128),
    ("ADAM_BETA1", 0.8),
    ("ADAM_BETA2", 0.95),
    ("SOFTCAP", 15),
    ("ROPE_BASE", 10000),
    ("MLP_RATIO", 4),
    ("INIT_SCALE", 1.0),
    ("VE_WD", 0.0),
]
IDEAS = [
    "use a sliding window pattern with more short attention layers",
    "tie the embedding and unembedding weights",
    "run attention and MLP in parallel",
    "multi-query attention with one key/value head",
    "add gradient clipping",
    "switch the MLP to SwiGLU",
    "cosine learning rate schedule instead of linear warmdown",
    "remove the value embeddings from early layers",
    "zero-initialise the output projections",
    "add QK layer norm",
]
STATUS_MIX = [(Status.keep, 0.15), (Status.discard, 0.77), (Status.crash, 0.03)] + [
    (Status.timeout, 0.05)
]
QUERIES = [
    "raise the learning rate of the weight matrices",
    "a smaller batch so the optimizer takes more steps",
    "make the model deeper with more layers",
    "share input and output embedding parameters",
    "decay the learning rate for longer at the end",
    "more weight decay on the embeddings",
    "local attention windows",
    "change the Adam momentum coefficients",
    "soft capping of logits",
    "rotary embedding base frequency",
    "bigger feed-forward hidden size",
    "smaller initial weights",
]
RUN = re.compile(r"\(run #(\d+)\)")


def documents(real: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    while len(out) < real:
        if rng.random() < 0.25:
            text = rng.choice(IDEAS)
        else:
            name, base = rng.choice(KNOBS)
            factor = rng.choice([0.5, 0.7, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0])
            new = base * factor if base else rng.choice([0.01, 0.02, 0.05, 0.1])
            text = f"{name.replace('_', ' ').lower()} {base:g} to {new:g}"
        out.append(f"{text} [{len(out)}]")
    return out


class Precomputed:
    """Embedder over precomputed vectors: documents carry ``(run #i)``; other texts
    (queries) must have been registered with ``remember``."""

    name = MiniLMEmbedder.name
    dim = MiniLMEmbedder.dim

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.queries: dict[str, list[float]] = {}

    def remember(self, text: str, vector: list[float]) -> None:
        self.queries[text] = vector

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for t in texts:
            m = RUN.search(t)
            out.append(self.vectors[int(m.group(1))].tolist() if m else self.queries[t])
        return out


class SearchFilter(TypedDict, total=False):
    """The filters of one search scenario (``Store.search``'s keyword arguments)."""

    task: str
    status: list[Status]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="traces to insert")
    ap.add_argument("--real", type=int, default=2000, help="documents embedded by MiniLM")
    ap.add_argument("--queries", type=int, default=200, help="searches per scenario")
    ap.add_argument("--batch", type=int, default=5000, help="import_records batch size")
    ap.add_argument("--dir", default=None, help="store directory (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    np_rng = np.random.default_rng(args.seed)
    root = Path(args.dir or tempfile.mkdtemp(prefix="labswarm-bench-"))

    print(f"# labswarm memory benchmark: n={args.n} real={args.real} dir={root}")
    minilm = MiniLMEmbedder()
    t = time.perf_counter()
    minilm.embed(["load"])
    print(f"model load:            {time.perf_counter() - t:8.2f} s")
    docs = documents(args.real, rng)
    t = time.perf_counter()
    base = np.asarray(minilm.embed(docs), dtype=np.float32)
    dt = time.perf_counter() - t
    print(f"MiniLM batch embed:    {args.real / dt:8.1f} texts/s  ({args.real} texts, {dt:.1f} s)")

    noise = np_rng.normal(0.0, 0.02, size=(args.n, base.shape[1])).astype(np.float32)
    vectors = base[np.arange(args.n) % args.real] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    emb = Precomputed(vectors)

    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]

    def trace(i: int) -> ExperimentCreate:
        status = rng.choices(statuses, weights)[0]
        return ExperimentCreate(
            id=f"b{i:07d}",
            task="bench" if i % 10 else "other",  # 90% in the task searched below
            fingerprint=f"fp{i:07d}",
            status=status,
            hypothesis=f"{docs[i % args.real]} (run #{i})",
            metric=None if status in (Status.crash, Status.timeout) else 0.97 + rng.random() / 50,
            hardware="1xH100",
        )

    store = get_store(root, embedder=emb)
    t = time.perf_counter()
    for start in range(0, args.n, args.batch):
        store.import_records([trace(i) for i in range(start, min(args.n, start + args.batch))], [])
    dt = time.perf_counter() - t
    print(f"bulk insert:           {args.n / dt:8.1f} traces/s  ({args.n} in {dt:.1f} s)")
    assert store.count() == args.n and store.index_count() == args.n

    extra = 1000
    t = time.perf_counter()
    for i in range(args.n, args.n + extra):
        store.add_trace(
            trace(i % args.n).model_copy(update={"id": f"s{i}", "fingerprint": f"s{i}"})
        )
    store.index_count()  # wait for the background indexer
    dt = time.perf_counter() - t
    print(f"add_trace (one by one):{extra / dt:8.1f} traces/s  ({extra} calls, indexed)")

    queries = [
        QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" v{i}")
        for i in range(args.queries)
    ]
    q_times = []
    for q in queries:
        t = time.perf_counter()
        vec = minilm.embed([q])[0]
        q_times.append((time.perf_counter() - t) * 1000)
        emb.remember(q, vec)
    print(
        f"query embedding:       p50 {statistics.median(q_times):6.1f} ms   "
        f"p95 {pct(q_times, 0.95):6.1f} ms  (MiniLM, one text)"
    )

    scenarios: dict[str, SearchFilter] = {
        "task only": {"task": "bench"},
        "task + status=keep": {"task": "bench", "status": [Status.keep]},
        "task + status=crash": {"task": "bench", "status": [Status.crash]},
        "task + keep|discard": {"task": "bench", "status": [Status.keep, Status.discard]},
        "no filter (all tasks)": {},
    }
    for name, kw in scenarios.items():
        store.search(queries[0], limit=10, **kw)  # warm
        times = []
        for q in queries:
            t = time.perf_counter()
            hits = store.search(q, kinds=["trace"], limit=10, **kw)
            times.append((time.perf_counter() - t) * 1000)
            assert len(hits) == 10
            if "status" in kw:
                assert all(
                    h.experiment is not None and h.experiment.status in kw["status"] for h in hits
                )
        print(
            f"search {name:<22} p50 {statistics.median(times):6.1f} ms   "
            f"p95 {pct(times, 0.95):6.1f} ms   (k=10, {len(times)} queries)"
        )
    store.close()
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
