"""Server test fixtures: one seeded embedded store (real MiniLM) served by a real uvicorn
on a loopback port for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from memory import get_store
from memory.base import Store
from memory.embed import Embedder
from tests.server.http_backend import TOKEN, serve_store
from tests.server.seeding import seed

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def seeded_with_counts(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Store, dict[str, int]]]:
    store = get_store(tmp_path_factory.mktemp("server-seeded") / "memory", embedder=embedder)
    try:
        yield store, seed(store)
    finally:
        store.close()


@pytest.fixture(scope="session")
def seeded(seeded_with_counts: tuple[Store, dict[str, int]]) -> Store:
    """The seeded store: the Karpathy pack plus the own test swarm (see seeding.py)."""
    return seeded_with_counts[0]


@pytest.fixture(scope="session")
def pack_counts(seeded_with_counts: tuple[Store, dict[str, int]]) -> dict[str, int]:
    """How many traces and findings the Karpathy pack added."""
    return seeded_with_counts[1]


@pytest.fixture(scope="session")
def server_url(seeded: Store) -> Iterator[str]:
    with serve_store(seeded, token=TOKEN) as url:
        yield url


@pytest.fixture(scope="session")
def api(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as client:
        yield client
