"""A real labswarm server on a loopback port, for tests.

``serve_app(app)`` runs uvicorn in a thread on a socket bound to 127.0.0.1:0 (a real
socket, a real HTTP stack) and stops it with ``server.should_exit``.
``make_http(env)`` is the HTTP backend of the shared contract suite
(``tests/backends.py``): a fresh embedded store in ``tmp_path``, a server over it, and an
``HTTPStore`` talking to that server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from memory._http import HTTPStore
from memory.base import Store
from memory.embed import Embedder
from server.app import create_app
from server.settings import Settings

TOKEN = "test-token-7f3a"


def embedded_store(path: Path, embedder: Embedder | str | None = None) -> Store:
    from memory import get_store

    return get_store(path, embedder=embedder)


@contextmanager
def serve_app(app: Any, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve_store(store: Store, *, token: str | None = TOKEN, **settings: Any) -> Iterator[str]:
    """A server over ``store`` (writes need ``token``; ``None`` = read-only)."""
    app = create_app(store, Settings(token=token, **settings))
    with serve_app(app) as url:
        yield url


@contextmanager
def make_http(env: Any, *, token: str = TOKEN) -> Iterator[HTTPStore]:
    """An ``HTTPStore`` over a real uvicorn over a fresh embedded store in
    ``env.tmp_path`` with ``env.embedder`` (``env`` is a ``tests.backends.BackendEnv``)."""
    backing = embedded_store(Path(env.tmp_path) / "served-memory", env.embedder)
    try:
        with serve_store(backing, token=token) as url, HTTPStore(url, token=token) as store:
            yield store
    finally:
        backing.close()
