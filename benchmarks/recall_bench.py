"""Recall benchmark: paraphrase queries against Karpathy's 126-run H100 log.

    .venv/bin/python benchmarks/recall_bench.py            # both query sets
    .venv/bin/python benchmarks/recall_bench.py --misses   # also list queries missed at 5

The pack ``seeds/karpathy-h100-mar8.jsonl`` is imported into a fresh embedded store (SQLite +
Chroma in a temp dir, real all-MiniLM-L6-v2), and every query goes through
``Store.search(query, task="autoresearch", limit=10)`` -- the call agents make to recall
related traces. A query scores a hit at k when any of its target commits is among the
first k hits. Printed per query set: recall@1, @5, @10, MRR@10 and the cost of one search
(p50/p95 ms, embedding of the query included). Numbers only, no assertions.

Two arms per query set:

* ``dense`` -- ``Store.search`` as it is (cosine over MiniLM vectors).
* ``hybrid`` -- a proposal, not in the store: ``Store.search`` with ``limit=POOL`` (40), then
  the pool re-ranked by reciprocal-rank fusion (k=60, equal weights) of its dense rank and a
  BM25 rank over the hits' stored document text (lower-cased words, English stop words
  dropped, IDF over the pool; a hit sharing no word with the query gets no lexical rank).
  It lives here because in the store it would break ``SearchHit.score``'s contract (cosine,
  sorted best first).

Query sets:

* ``blind`` -- ``benchmarks/recall_blind.jsonl``, 30 queries. How it was written: before
  reading any of the memory code (documents, search, index, embedder) or the existing recall
  test, and before running any search, from the log's TSV descriptions alone. Each query
  says one idea the log tried in a researcher's own words, avoiding the log's abbreviations
  and numbers (``WD``, ``VE``, ``softcap``, ``x0_lambda``, values), and maps to every commit
  that tried that idea. The file was frozen before the first search (sha256 483bf88e...) and
  was never used to tune anything; a change is judged on its aggregate numbers only.
* ``test`` -- the 15 queries of ``tests/memory/test_recall.py`` (not blind: that test
  requires each of them in the top 5, so the store was shaped to pass them).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memory import SearchHit, Store, get_store  # noqa: E402
from memory.embed import MiniLMEmbedder  # noqa: E402
from memory.packs import import_pack  # noqa: E402

PACK = REPO / "seeds" / "karpathy-h100-mar8.jsonl"
BLIND = REPO / "benchmarks" / "recall_blind.jsonl"
TASK = "autoresearch"
DEPTH = 10
CUTOFFS = (1, 5, 10)
POOL = 40  # dense candidates re-ranked by the hybrid arm
RRF_K = 60
BM25_K1, BM25_B = 1.2, 0.75
STOP_WORDS = frozenset(
    "a an and are as at be by do does for from in into is it its no not of on or over so "
    "than that the then this to up down more less with".split()
)
_WORD = re.compile(r"[a-z0-9]+")

Query = tuple[str, set[str]]
Hits = list[SearchHit]


@dataclass(frozen=True)
class Outcome:
    """One query's result: the 1-based rank of the first target hit (None: not in the top
    ``DEPTH``), the fingerprints returned, and the search time in ms."""

    query: str
    rank: int | None
    found: list[str]
    ms: float


def first_hit_rank(found: Sequence[str], targets: set[str]) -> int | None:
    """1-based rank of the first fingerprint in ``found`` that is a target, else None."""
    for i, fingerprint in enumerate(found, start=1):
        if fingerprint in targets:
            return i
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of queries whose first target hit is at rank <= k."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr(ranks: Sequence[int | None]) -> float:
    """Mean reciprocal rank of the first target hit (0 for a miss)."""
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def words(text: str) -> list[str]:
    """Lower-cased word tokens without stop words."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def bm25(query: str, docs: Sequence[str]) -> list[float]:
    """Okapi BM25 of ``query`` against each of ``docs``, IDF computed over ``docs``."""
    tokens = [words(d) for d in docs]
    avg = sum(map(len, tokens)) / max(1, len(tokens)) or 1.0
    df = Counter(w for ts in tokens for w in set(ts))
    terms = words(query)
    scores = []
    for ts in tokens:
        tf = Counter(ts)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(ts) / avg)
        scores.append(
            sum(
                math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
                * tf[w]
                * (BM25_K1 + 1)
                / (tf[w] + norm)
                for w in terms
                if w in tf
            )
        )
    return scores


def fuse(query: str, hits: Hits) -> Hits:
    """``hits`` (dense order) re-ranked by RRF of dense rank and BM25 rank."""
    lexical = bm25(query, [h.text for h in hits])
    by_lexical = sorted((i for i, s in enumerate(lexical) if s > 0), key=lambda i: -lexical[i])
    fused = {i: 1 / (RRF_K + i + 1) for i in range(len(hits))}
    for rank, i in enumerate(by_lexical, start=1):
        fused[i] += 1 / (RRF_K + rank)
    return [hits[i] for i in sorted(fused, key=lambda i: -fused[i])]


def dense(store: Store, query: str) -> Hits:
    return store.search(query, task=TASK, limit=DEPTH)


def hybrid(store: Store, query: str) -> Hits:
    return fuse(query, store.search(query, task=TASK, limit=POOL))[:DEPTH]


ARMS: dict[str, Callable[[Store, str], Hits]] = {"dense": dense, "hybrid": hybrid}


def load_blind(path: Path = BLIND) -> list[Query]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["query"], set(row["targets"])) for row in rows]


def load_test_queries() -> list[Query]:
    from tests.memory.test_recall import QUERIES

    return list(QUERIES)


def run_queries(
    store: Store, queries: Sequence[Query], arm: Callable[[Store, str], Hits]
) -> list[Outcome]:
    out = []
    for query, targets in queries:
        t0 = time.perf_counter()
        hits = arm(store, query)
        ms = (time.perf_counter() - t0) * 1000
        found = [h.experiment.fingerprint for h in hits if h.experiment is not None]
        out.append(Outcome(query, first_hit_rank(found, targets), found, ms))
    return out


def report(name: str, outcomes: Sequence[Outcome], misses: bool) -> None:
    ranks = [o.rank for o in outcomes]
    ms = [o.ms for o in outcomes]
    recalls = "  ".join(f"R@{k} {recall_at(ranks, k):.3f}" for k in CUTOFFS)
    print(
        f"{name:13s} n={len(outcomes):2d}  {recalls}  MRR@{DEPTH} {mrr(ranks):.3f}  "
        f"ms p50 {statistics.median(ms):.1f} p95 {percentile(ms, 0.95):.1f}"
    )
    if misses:
        for o in outcomes:
            if o.rank is None or o.rank > 5:
                print(f"    miss@5 (rank {o.rank}): {o.query!r} -> {o.found[:5]}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--misses", action="store_true", help="list queries missed at 5")
    args = ap.parse_args(argv)
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])  # load the model before anything is timed
    with tempfile.TemporaryDirectory(prefix="recall-bench-") as tmp:
        store = get_store(Path(tmp), embedder=embedder)
        try:
            import_pack(store, PACK)
            store.search("warm up", task=TASK, limit=DEPTH)
            for name, queries in (("blind", load_blind()), ("test", load_test_queries())):
                for arm_name, arm in ARMS.items():
                    outcomes = run_queries(store, queries, arm)
                    report(f"{name} {arm_name}", outcomes, args.misses)
        finally:
            store.close()


if __name__ == "__main__":
    main()
