"""Load: 16 concurrent writers x 200 traces through HTTP into one server -> every trace
stored exactly once (0 lost, 0 duplicated), in SQL and in the vector index.

The served store lives on tmpfs (/dev/shm) when there is one: on this machine's disk each
write pays ~45 ms of fsync in Chroma's SQLite, which would make this test take minutes
while checking nothing more (durability is not what it is about)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from memory import get_store
from memory._http import HTTPStore
from memory.models import ExperimentCreate, Status, TraceQuery
from tests.server.http_backend import TOKEN, serve_store

WRITERS = 16
PER_WRITER = 200


def write_all(url: str, writer: int) -> list[str]:
    ids = []
    with HTTPStore(url, token=TOKEN) as store:
        for n in range(PER_WRITER):
            trace = store.add_trace(
                ExperimentCreate(
                    task="load",
                    agent_id=f"w{writer}",
                    fingerprint=f"w{writer}-{n}",
                    status=Status.discard if n % 3 else Status.keep,
                    metric=1.0 + n / 1000,
                    hypothesis=f"writer {writer} change {n}",
                )
            )
            ids.append(trace.id)
    return ids


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="labswarm-load-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_concurrent_writers_lose_and_duplicate_nothing(fast_dir: Path) -> None:
    store = get_store(fast_dir / "memory", embedder="hash")
    try:
        with serve_store(store, token=TOKEN) as url:
            with ThreadPoolExecutor(WRITERS) as pool:
                results = list(pool.map(lambda w: write_all(url, w), range(WRITERS)))
            returned = [tid for ids in results for tid in ids]
            assert len(returned) == len(set(returned)) == WRITERS * PER_WRITER

            with HTTPStore(url) as reader:
                stored = []
                while True:
                    page = reader.query_traces(
                        TraceQuery(task="load", sort="created_at", limit=1000, offset=len(stored))
                    )
                    stored.extend(page.data)
                    if not page.data:
                        break
                assert page.count == WRITERS * PER_WRITER
                assert sorted(t.id for t in stored) == sorted(returned)  # 0 lost, 0 extra
                prints = [t.fingerprint for t in stored]
                assert len(set(prints)) == len(prints)  # 0 duplicated
                for w in range(WRITERS):
                    mine = reader.count(TraceQuery(task="load", agent_id=f"w{w}"))
                    assert mine == PER_WRITER
                assert reader.index_count() == WRITERS * PER_WRITER  # every row indexed
    finally:
        store.close()
