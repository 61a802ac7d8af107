"""Semantic recall with the real MiniLM model over Karpathy's 126-run H100 log.

Each query paraphrases an idea the log tried (none repeats its wording); one of the traces
that tried it must be in the top 5. Targets are commit fingerprints from the pack.

    .venv/bin/pytest tests/memory/test_recall.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import Store, get_store
from memory.embed import Embedder
from memory.packs import import_pack

QUERIES: list[tuple[str, set[str]]] = [
    ("make the optimizer batch smaller so it takes more update steps", {"bea057b"}),
    ("increase the rotary positional encoding base", {"59e9dd9", "d0662d1", "2f0cec6", "6193116"}),
    ("same parameters for input and output embeddings", {"d70987b"}),
    ("run attention and feed-forward side by side instead of one after the other", {"46cf5f2"}),
    ("one key/value head shared by all query heads", {"b85567f"}),
    ("limit the size of the gradients", {"aa61e0b"}),
    (
        "shrink the initial weights of the transformer",
        {"41d50a8", "f5979a7", "991abb2", "2216fd6", "119065a", "97dda85", "58b8b7a"},
    ),
    ("cosine shaped learning rate decay at the end", {"30f1b8d"}),
    ("widen the feed-forward hidden layer", {"c4b0731", "5a9c951"}),
    ("ramp the learning rate up gradually at the start of training", {"187e419", "b1f02f7"}),
    (
        "spend longer decaying the learning rate at the end",
        {"4e6697f", "187db84", "59316b9", "438a26e", "d9322b9"},
    ),
    ("tanh capping of the output logits", {"fa14910", "7d3f0e4", "2a3f587"}),
    ("fewer orthogonalization iterations in Muon", {"31b838e"}),
    ("a deeper but narrower network", {"3ec9cfa", "7f2a65c", "00a7c09", "3cde993"}),
    ("try a different random number generator starting value", {"889dbed"}),
]


@pytest.fixture(scope="module")
def karpathy_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, karpathy_pack: Path
) -> Iterator[Store]:
    store = get_store(tmp_path_factory.mktemp("recall"), embedder=embedder)
    result = import_pack(store, karpathy_pack)
    assert result.added_traces == 126
    yield store
    assert store.index_count() == 126
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize(("query", "targets"), QUERIES, ids=[q for q, _ in QUERIES])
def test_paraphrase_is_in_top5(karpathy_store: Store, query: str, targets: set[str]) -> None:
    hits = karpathy_store.search(query, kinds=["trace"], task="autoresearch", limit=5)
    found = [h.experiment.fingerprint for h in hits if h.experiment is not None]
    assert len(found) == 5
    assert set(found) & targets, f"{query!r}: top 5 were {[h.text[:60] for h in hits]}"


def test_queries_do_not_copy_the_descriptions(karpathy_pack: Path) -> None:
    """Guard against a query that is just the logged description."""
    text = karpathy_pack.read_text().lower()
    for query, _ in QUERIES:
        assert query.lower() not in text
    assert len(QUERIES) >= 10
