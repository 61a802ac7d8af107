"""SQL first, then the index: an indexing failure loses nothing and reindex repairs it;
the resolver's forms and refusals.

    .venv/bin/pytest tests/memory/test_consistency.py -q
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlmodel import Session, select

from memory import (
    BackendUnavailable,
    Conflict,
    ExperimentCreate,
    FindingCreate,
    InvalidInput,
    Status,
    get_store,
)
from memory.embed import Embedder, HashEmbedder
from memory.models import Experiment


class FlakyEmbedder:
    """Hash vectors, but raises while ``broken`` is set (an index/embedder outage)."""

    name = HashEmbedder.name
    dim = HashEmbedder.dim

    def __init__(self) -> None:
        self.inner = HashEmbedder()
        self.broken = False

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.broken:
            raise RuntimeError("embedding service down")
        return self.inner.embed(texts)


def _trace(i: int) -> ExperimentCreate:
    return ExperimentCreate(
        id=f"t{i}", task="gpt", fingerprint=f"fp{i}", status=Status.discard, hypothesis=f"idea {i}"
    )


def test_index_failure_keeps_the_row_and_reindex_repairs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyEmbedder()
    with get_store(tmp_path / "m", embedder=flaky) as store:
        store.add_trace(_trace(0))
        assert store.index_count() == 1  # indexed in the background; index_count waits
        flaky.broken = True
        with caplog.at_level(logging.WARNING, logger="memory._store"):
            stored = store.add_trace(_trace(1))
            store.import_records(
                [_trace(2)], [FindingCreate(id="f", change="c", outcome="note", source="s")]
            )
            assert store.index_count() == 1  # waits for the background indexer
        assert "indexed=False" in caplog.text and "embedding service down" in caplog.text
        assert stored.id == "t1" and store.get_trace("t1").hypothesis == "idea 1"
        assert store.count() == 3 and store.index_count() == 1
        with Session(store.engine) as session:  # type: ignore[attr-defined]
            pending = session.exec(select(Experiment.id).where(Experiment.indexed == False))  # noqa: E712
            assert sorted(pending) == ["t1", "t2"]
        with pytest.raises(BackendUnavailable, match="embedding service down"):
            store.reindex()
        flaky.broken = False
        assert store.reindex() == 3  # t1, t2 and the finding
        assert store.index_count() == 4
        assert store.search("idea 1", kinds=["trace"], limit=1)[0].id == "t1"


def test_reopened_store_keeps_everything(tmp_path: Path) -> None:
    with get_store(tmp_path / "m", embedder="hash") as store:
        store.add_trace(_trace(0))
    with get_store(tmp_path / "m", embedder="hash") as store:
        assert store.get_trace("t0").fingerprint == "fp0"
        assert store.index_count() == 1
        assert store.search("idea 0", limit=1)[0].id == "t0"


def test_index_of_another_embedder_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    with get_store(tmp_path / "m", embedder="hash") as store:
        store.add_trace(_trace(0))
    with get_store(tmp_path / "m", embedder=embedder) as store:
        with pytest.raises(Conflict, match="reindex --full"):
            store.search("idea", task="gpt")
        assert store.reindex(full=True) == 1  # rebuilt with the new embedder
        assert store.search("idea 0", task="gpt", limit=1)[0].id == "t0"


def test_resolver_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSWARM_HOME", str(tmp_path / "home"))
    with get_store(embedder="hash") as store:
        assert store.location == str((tmp_path / "home").resolve())  # type: ignore[attr-defined]
        assert get_store(store) is store
        assert (tmp_path / "home" / "memory.sqlite").exists()
        assert (tmp_path / "home" / "chroma").is_dir()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with get_store(url, embedder="hash") as store:
        store.add_trace(_trace(0))
    assert (tmp_path / "x.db").exists() and (tmp_path / "x.db.chroma").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="is a file"):
        get_store(tmp_path / "file")
    with pytest.raises(InvalidInput, match="unknown URL scheme 'ftp'"):
        get_store("ftp://x/y")
    monkeypatch.delenv("LABSWARM_CHROMA_URL", raising=False)
    with pytest.raises(InvalidInput, match="LABSWARM_CHROMA_URL"):
        get_store("postgresql://postgres@127.0.0.1:5432/test")
    with pytest.raises(InvalidInput, match="embedder: unknown name 'nope'"):
        get_store(tmp_path / "y", embedder="nope")


@pytest.mark.postgres
def test_postgres_url_with_env_chroma(services, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("LABSWARM_CHROMA_URL", services.chroma_url())
    url = services.postgres_url().replace("postgresql+psycopg://", "postgresql://")
    with get_store(url, embedder="hash") as store:
        assert "@" not in store.location  # type: ignore[attr-defined]
        assert store.count() >= 0
