"""Store backends for the memory contract suite (and anyone else's tests).

``BACKENDS`` maps a name to a factory ``f(env: BackendEnv) -> ContextManager[Store]`` that
yields an EMPTY store and cleans up after it:

- ``embedded``: SQLite file + local Chroma ``PersistentClient`` in ``env.tmp_path``;
- ``team``: PostgreSQL (a fresh database for the test session, dropped afterwards) +
  a ``chroma run`` server on a free loopback port, stopped by PID at the end; each store
  starts from emptied tables and collections;
- ``http``: the labswarm server on uvicorn over an embedded store, through the HTTP store
  (``tests/server/http_backend.py``).

Services (PostgreSQL database, Chroma server) start lazily on first use, once per
session: ``Services.close()`` (called by the session fixture in ``tests/conftest.py``)
drops and stops them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from memory import Store, get_store
from memory.embed import Embedder
from tests.server.http_backend import make_http

PG_ADMIN_URL = os.environ.get(
    "LABSWARM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHROMA_BIN = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedProcess:
    """A server process on a loopback port, in its own session: ``start`` waits until its
    health URL answers (or says why it did not start), ``stop`` ends it by PID."""

    proc: subprocess.Popen[bytes]

    def start(
        self,
        argv: list[str],
        health: str,
        log: Path,
        *,
        wait_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{Path(argv[0]).name} {argv[1]} did not start ({health}): "
                        f"{log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ChromaServer(ServedProcess):
    """``chroma run`` on a free loopback port in its own directory; stop() kills it by PID."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = path.with_suffix(".log")
        argv = [str(CHROMA_BIN), "run", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--path", str(path)]
        self.start(argv, f"{self.url}/api/v2/heartbeat", self.log, wait_s=30)


class PostgresDatabase:
    """A fresh database ``labswarm_t_<hex>`` on the local server, dropped by ``drop()``."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text

        self.name = f"labswarm_t_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        from sqlalchemy import text

        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


@dataclass
class Services:
    """Session-wide servers, started on first use."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="labswarm-svc-")))
    _pg: PostgresDatabase | None = None
    _chroma: ChromaServer | None = None

    def postgres_url(self) -> str:
        if self._pg is None:
            self._pg = PostgresDatabase()
        return self._pg.url

    def chroma_url(self) -> str:
        if self._chroma is None:
            self._chroma = ChromaServer(self.root / "chroma")
        return self._chroma.url

    def close(self) -> None:
        if self._chroma is not None:
            self._chroma.stop()
            self._chroma = None
        if self._pg is not None:
            self._pg.drop()
            self._pg = None
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class BackendEnv:
    tmp_path: Path
    embedder: Embedder
    services: Services


def team_url(env: BackendEnv) -> str:
    return f"{env.services.postgres_url()}?chroma={env.services.chroma_url()}"


def wipe(store: Store) -> None:
    """Empty a SQL-backed store: every table and every labswarm collection."""
    from sqlalchemy import text
    from sqlmodel import SQLModel

    names = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"TRUNCATE {names}"))
    store.index.clear()  # type: ignore[attr-defined]


@contextlib.contextmanager
def make_embedded(env: BackendEnv) -> Iterator[Store]:
    store = get_store(env.tmp_path / "memory", embedder=env.embedder)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def make_team(env: BackendEnv) -> Iterator[Store]:
    store = get_store(team_url(env), embedder=env.embedder)
    wipe(store)
    try:
        yield store
    finally:
        store.close()


BACKENDS: dict[str, Callable[[BackendEnv], AbstractContextManager[Store]]] = {
    "embedded": make_embedded,
    "team": make_team,
    "http": make_http,  # the same contract through the labswarm server on uvicorn
}
