"""Shared fixtures: the real MiniLM embedder (loaded once), session services (a fresh
PostgreSQL database and a ``chroma run`` server, started lazily and stopped by PID),
backend environments for ``tests/backends.py`` and the shipped Karpathy pack."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from memory.embed import Embedder, HashEmbedder, get_embedder
from tests.backends import BackendEnv, Services

REPO = Path(__file__).resolve().parents[1]
KARPATHY_PACK = REPO / "seeds" / "karpathy-h100-mar8.jsonl"

# Files whose tests share one pytest-xdist worker, so they never run at the same time.
# Both start Ray clusters (a head and nodes: dozens of processes) and wait on Ray's health
# checks with short limits; sharing a worker is a precaution (side by side they were never
# tried). `--dist loadfile` alone cannot put two files on one worker, hence the groups.
SHARED_WORKER = {"test_ray.py": "ray", "test_ray_cli.py": "ray"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs two workers with `--dist loadgroup`: the tests of a file form one
    group, so a file's module fixtures are set up on one worker only, and the Ray files
    share a group."""
    for item in items:
        group = SHARED_WORKER.get(item.path.name, str(item.path))
        item.add_marker(pytest.mark.xdist_group(group))


class CachedEmbedder:
    """The real model's vectors, memoised per text for the session, so that the same texts
    embedded for each backend of the contract suite cost one model call."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.inner.embed(missing)
            with self._lock:
                self._cache.update(zip(missing, vectors, strict=True))
        with self._lock:
            return [self._cache[t] for t in texts]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2, loaded once per test session (vectors memoised)."""
    emb = CachedEmbedder(get_embedder("minilm"))
    emb.embed(["warm up"])
    return emb


@pytest.fixture(scope="session")
def hash_embedder() -> Embedder:
    """Feature hashing: for tests that check storage, not meaning."""
    return HashEmbedder()


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    svc = Services()
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def backend_env(tmp_path: Path, embedder: Embedder, services: Services) -> BackendEnv:
    return BackendEnv(tmp_path=tmp_path, embedder=embedder, services=services)


@pytest.fixture(scope="session")
def karpathy_pack() -> Path:
    assert KARPATHY_PACK.exists(), f"missing {KARPATHY_PACK}"
    return KARPATHY_PACK
