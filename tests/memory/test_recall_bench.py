"""The recall benchmark's scoring and its hybrid re-ranking (no model, no store)."""

from __future__ import annotations

from benchmarks.recall_bench import bm25, first_hit_rank, fuse, load_blind, mrr, recall_at
from memory import SearchHit


def _hit(i: int, text: str) -> SearchHit:
    return SearchHit(kind="trace", id=f"t{i}", score=1.0 - i / 10, text=text)


def test_first_hit_rank_is_the_first_target_one_based() -> None:
    assert first_hit_rank(["a", "b", "c", "b"], {"b", "c"}) == 2
    assert first_hit_rank(["a", "b"], {"z"}) is None
    assert first_hit_rank([], {"a"}) is None


def test_recall_at_k_counts_a_hit_at_rank_k_and_not_after() -> None:
    ranks = [1, 5, 6, None]
    assert recall_at(ranks, 1) == 0.25
    assert recall_at(ranks, 5) == 0.5
    assert recall_at(ranks, 10) == 0.75
    assert mrr(ranks) == (1 + 1 / 5 + 1 / 6) / 4


def test_bm25_scores_shared_rare_words_and_ignores_stop_words() -> None:
    docs = ["rotary base frequency", "the of and", "learning rate of the head"]
    scores = bm25("the rotary frequency", docs)
    assert scores[0] > 0
    assert scores[1] == 0 and scores[2] == 0


def test_fuse_promotes_a_lexical_match_without_dropping_hits() -> None:
    hits = [_hit(0, "warmup ratio"), _hit(1, "batch size"), _hit(2, "rotary base frequency")]
    fused = fuse("raise the rotary frequency", hits)
    assert [h.id for h in fused] == ["t2", "t0", "t1"]
    assert [h.id for h in fuse("nothing shared", hits)] == ["t0", "t1", "t2"]


def test_blind_set_has_30_queries_with_commit_targets() -> None:
    queries = load_blind()
    assert len(queries) == 30
    assert all(t and all(len(c) == 7 for c in t) for _, t in queries)
