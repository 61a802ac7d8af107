"""``get_store``: one argument picks the backend (optuna's ``get_storage`` shape).

============================================  =============================================
``get_store(...)``                            backend
============================================  =============================================
``None``                                      embedded in ``$LABSWARM_HOME`` or ``./.labswarm``
a directory path (``str`` or ``Path``)        embedded there: ``memory.sqlite`` + ``chroma/``
``sqlite:///path/file.db``                    that SQLite file, Chroma in ``file.db.chroma/``
                                              (or ``?chroma=http://host:port``)
``postgresql://user@host:port/db?chroma=URL`` team: PostgreSQL + a ``chroma run`` server;
                                              without ``?chroma=`` the server URL comes from
                                              ``$LABSWARM_CHROMA_URL``
``http://host:port`` / ``https://...``        the labswarm server (``memory._http.HTTPStore``)
a ``Store``                                   returned as is
============================================  =============================================

The embedder is MiniLM unless ``embedder=`` (an ``Embedder`` or a name) or
``$LABSWARM_EMBEDDER`` says otherwise; a store refuses an index built by another embedder.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from memory.base import Store
from memory.embed import Embedder, get_embedder
from memory.errors import BackendUnavailable, InvalidInput

DEFAULT_DIR = ".labswarm"
SQLITE_FILE = "memory.sqlite"
CHROMA_DIR = "chroma"


def default_home() -> Path:
    """``$LABSWARM_HOME`` or ``./.labswarm``."""
    return Path(os.environ.get("LABSWARM_HOME") or DEFAULT_DIR)


def _split_chroma(url: str) -> tuple[str, str | None]:
    """Take the ``chroma`` query parameter out of a database URL (the rest is kept as is)."""
    base, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    chroma = next((v for k, v in params if k == "chroma"), None)
    rest = urlencode([(k, v) for k, v in params if k != "chroma"])
    return (f"{base}?{rest}" if rest else base), chroma


def embedded(path: str | Path, embedder: Embedder | str | None = None) -> Store:
    """The embedded store in directory ``path`` (created if missing)."""
    from memory._index import ChromaIndex
    from memory._store import SqlStore

    home = Path(path).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise InvalidInput(f"memory: {home} is a file, not a directory")
    home.mkdir(parents=True, exist_ok=True)
    emb = get_embedder(embedder)
    index = ChromaIndex.local(home / CHROMA_DIR, emb.name)
    return SqlStore(f"sqlite:///{home / SQLITE_FILE}", index, emb, location=str(home))


def _sql_url(url: str, embedder: Embedder | str | None) -> Store:
    from memory._index import ChromaIndex
    from memory._store import SqlStore

    db_url, chroma = _split_chroma(url)
    emb = get_embedder(embedder)
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.split("?", 1)[0].split(":///", 1)[-1])
        if chroma:
            index = ChromaIndex.http(chroma, emb.name)
        else:
            index = ChromaIndex.local(Path(f"{db_file}.chroma"), emb.name)
        return SqlStore(db_url, index, emb, location=db_url)
    chroma = chroma or os.environ.get("LABSWARM_CHROMA_URL")
    if not chroma:
        raise InvalidInput(
            "memory: a PostgreSQL store needs a Chroma server: add ?chroma=http://host:port "
            "to the URL or set LABSWARM_CHROMA_URL"
        )
    index = ChromaIndex.http(chroma, emb.name)
    parts = urlparse(db_url)
    host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    where = urlunparse(parts._replace(netloc=host, query=""))  # no password in messages
    return SqlStore(db_url, index, emb, location=f"{where} + {chroma}")


def get_store(
    target: Store | str | Path | None = None, *, embedder: Embedder | str | None = None
) -> Store:
    """Resolve ``target`` to a store (see the module docstring for the forms)."""
    if isinstance(target, Store):
        return target
    if target is None:
        return embedded(default_home(), embedder)
    text = str(target)
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        try:
            module = importlib.import_module("memory._http")
        except ModuleNotFoundError as exc:
            if exc.name != "memory._http":
                raise
            raise BackendUnavailable(
                "memory: the HTTP store (memory/_http.py) is not installed"
            ) from exc
        return module.HTTPStore(text)
    if scheme.startswith(("postgres", "sqlite")):
        return _sql_url(text, embedder)
    if scheme:
        raise InvalidInput(
            f"memory: unknown URL scheme {scheme!r} in {text!r} "
            "(use a directory, sqlite:///, postgresql://... or http(s)://)"
        )
    return embedded(text, embedder)
