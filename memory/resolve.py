"""``get_store``: one argument picks the backend (optuna's ``get_storage`` shape).

============================================  =============================================
``get_store(...)``                            backend
============================================  =============================================
``None``                                      ``$LABSWARM_MEMORY`` if set (any form below),
                                              else embedded in ``$LABSWARM_HOME`` or
                                              ``./.labswarm``
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
Environment values come from ``memory.settings.Settings`` (read once, by ``get_store``, when
no ``settings=`` is passed).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from memory._http import HTTPStore
from memory.base import Store
from memory.embed import Embedder, get_embedder
from memory.errors import InvalidInput
from memory.settings import DEFAULT_MAX_TASKS, Settings, get_settings

SQLITE_FILE = "memory.sqlite"
CHROMA_DIR = "chroma"


def _split_chroma(url: str) -> tuple[str, str | None]:
    """Take the ``chroma`` query parameter out of a database URL (the rest is kept as is)."""
    base, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    chroma = next((v for k, v in params if k == "chroma"), None)
    rest = urlencode([(k, v) for k, v in params if k != "chroma"])
    return (f"{base}?{rest}" if rest else base), chroma


def embedded(
    path: str | Path, embedder: Embedder | str | None = None, *, max_tasks: int | None = None
) -> Store:
    """The embedded store in directory ``path`` (created if missing), owned by this process
    until it is closed: another process opening it gets ``StoreInUse`` (``memory._lock``).
    ``max_tasks``: distinct task names accepted (default ``DEFAULT_MAX_TASKS``)."""
    from memory._index import ChromaIndex
    from memory._lock import acquire
    from memory._store import SqlStore
    from memory.settings import DEFAULT_MAX_TASKS

    home = Path(path).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise InvalidInput(f"memory: {home} is a file, not a directory")
    home.mkdir(parents=True, exist_ok=True)
    emb = get_embedder(embedder)
    lock = acquire(home)
    try:
        index = ChromaIndex.local(home / CHROMA_DIR, emb.name)
        return SqlStore(
            f"sqlite:///{home / SQLITE_FILE}",
            index,
            emb,
            location=str(home),
            max_tasks=max_tasks or DEFAULT_MAX_TASKS,
            owner_lock=lock,
        )
    except BaseException:
        lock.release()
        raise


def _sql_url(
    url: str,
    embedder: Embedder | str | None,
    chroma_url: str | None = None,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> Store:
    """A SQL store from a ``sqlite:///`` or ``postgresql://`` URL; ``chroma_url`` is the
    Chroma server for a PostgreSQL URL without ``?chroma=`` (``$LABSWARM_CHROMA_URL``)."""
    from memory._index import ChromaIndex
    from memory._lock import acquire
    from memory._store import SqlStore

    db_url, chroma = _split_chroma(url)
    emb = get_embedder(embedder)
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.split("?", 1)[0].split(":///", 1)[-1])
        if chroma:
            index = ChromaIndex.http(chroma, emb.name)
            return SqlStore(db_url, index, emb, location=db_url, max_tasks=max_tasks)
        # A local Chroma directory has one owner process, like the embedded store.
        chroma_dir = Path(f"{db_file}.chroma").expanduser().resolve()
        chroma_dir.mkdir(parents=True, exist_ok=True)
        lock = acquire(chroma_dir)
        try:
            index = ChromaIndex.local(chroma_dir, emb.name)
            return SqlStore(
                db_url, index, emb, location=db_url, max_tasks=max_tasks, owner_lock=lock
            )
        except BaseException:
            lock.release()
            raise
    chroma = chroma or chroma_url
    if not chroma:
        raise InvalidInput(
            "memory: a PostgreSQL store needs a Chroma server: add ?chroma=http://host:port "
            "to the URL or set LABSWARM_CHROMA_URL"
        )
    index = ChromaIndex.http(chroma, emb.name)
    parts = urlparse(db_url)
    host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    where = urlunparse(parts._replace(netloc=host, query=""))  # no password in messages
    return SqlStore(db_url, index, emb, location=f"{where} + {chroma}", max_tasks=max_tasks)


def get_store(
    target: Store | str | Path | None = None,
    *,
    embedder: Embedder | str | None = None,
    settings: Settings | None = None,
) -> Store:
    """Resolve ``target`` to a store (see the module docstring for the forms).

    ``target=None`` means ``settings.memory`` if set, else the embedded store in
    ``settings.home``; ``settings`` defaults to :func:`memory.settings.get_settings` (the
    environment now). ``embedder`` defaults to ``settings.embedder``."""
    if isinstance(target, Store):
        return target
    settings = settings or get_settings()
    embedder = embedder if embedder is not None else settings.embedder
    if target is None:
        target = settings.memory if settings.memory is not None else settings.home
    text = str(target)
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        token = settings.token.get_secret_value() if settings.token is not None else None
        return HTTPStore(text, token=token)
    if scheme.startswith(("postgres", "sqlite")):
        return _sql_url(text, embedder, settings.chroma_url, settings.max_tasks)
    if scheme:
        raise InvalidInput(
            f"memory: unknown URL scheme {scheme!r} in {text!r} "
            "(use a directory, sqlite:///, postgresql://... or http(s)://)"
        )
    return embedded(text, embedder, max_tasks=settings.max_tasks)
