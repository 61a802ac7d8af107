"""The vector index: Chroma, one collection per (kind, task, group), cosine space.

``ChromaIndex.local(dir)`` uses a ``PersistentClient`` (one process only: the embedded
store's memory owner); ``ChromaIndex.http(url)`` talks to a ``chroma run`` server and may be
shared by many processes. Vectors always come from labswarm's embedder: collections are
created with ``embedding_function=None`` so Chroma never loads a model of its own.

For traces the group is the status (traces never change status), for findings it is ``""``.
Collection names are ``ls-{kind}-{sha1(task)[:24]}[-{group}]`` (any task name is allowed);
task, kind, group and embedder name are kept in the collection metadata. Filters never go
to Chroma ``where``: a task and a status are collections.

Collections grow with the number of task names; ``memory._tasks.TaskCap`` bounds that
(``max_tasks``). Handles to collections are cached in an LRU of ``max_handles`` (64) so that
the Python side stays bounded too.

Each collection also records the document recipe its texts were made with
(``memory.documents.document_version()``). A collection made by an older recipe (or by a
labswarm that did not record one) still answers searches and takes new items; opening it
logs one warning per collection, and its name is in ``stale``, until
``labswarm memory reindex --full`` rebuilds every collection with the current recipe.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.documents import document_version
from memory.errors import BackendUnavailable, Conflict

log = logging.getLogger(__name__)

PREFIX = "ls-"
LISTING_TTL = 2.0
MAX_HANDLES = 64  # collection handles kept per index (least recently used dropped first)
KINDS = ("trace", "finding")


@dataclass(frozen=True)
class IndexHit:
    id: str
    score: float  # cosine similarity, higher is nearer
    text: str


def collection_name(kind: str, task: str, group: str = "") -> str:
    digest = hashlib.sha1(task.encode("utf-8", "surrogatepass")).hexdigest()
    name = f"{PREFIX}{kind[0]}-{digest[:24]}"
    return f"{name}-{group}" if group else name


class ChromaIndex:
    """Thread safe within one process (writes are serialised by a lock)."""

    def __init__(
        self, client: Any, embedder_name: str, where: str, max_handles: int = MAX_HANDLES
    ) -> None:
        self._client = client
        self._embedder_name = embedder_name
        self._where = where
        self._max_handles = max(1, max_handles)
        self._cols: OrderedDict[str, Any] = OrderedDict()  # LRU: most recent last
        self.stale: set[str] = set()  # collections built by an older document recipe
        self._lock = threading.RLock()
        # (time, {kind: [(task, group)]}) -- listing collections costs ~2.5 ms per search
        self._listing: tuple[float, dict[str, list[tuple[str, str]]]] | None = None
        try:
            self._batch = int(client.get_max_batch_size())
        except Exception:  # noqa: BLE001 - older servers do not say
            self._batch = 1000

    # -- construction --------------------------------------------------------

    @classmethod
    def local(cls, path: str | Path, embedder_name: str) -> ChromaIndex:
        import chromadb
        from chromadb.config import Settings

        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = chromadb.PersistentClient(
                path=str(path), settings=Settings(anonymized_telemetry=False)
            )
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"chroma: cannot open {path}: {exc}") from exc
        return cls(client, embedder_name, str(path))

    @classmethod
    def http(cls, url: str, embedder_name: str) -> ChromaIndex:
        import chromadb
        from chromadb.config import Settings

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise BackendUnavailable(f"chroma: not an http(s) URL: {url!r}")
        ssl = parsed.scheme == "https"
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if ssl else 8000),
                ssl=ssl,
                settings=Settings(anonymized_telemetry=False),
            )
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"chroma: cannot reach {url}: {exc}") from exc
        return cls(client, embedder_name, url)

    # -- collections ---------------------------------------------------------

    def _collection(self, kind: str, task: str, group: str, create: bool) -> Any | None:
        name = collection_name(kind, task, group)
        with self._lock:
            col = self._cols.get(name)
            if col is not None:
                self._cols.move_to_end(name)
                return col
            # Open an existing collection as it is: get_or_create_collection would overwrite
            # its metadata (embedder, document recipe) with this process's values.
            try:
                col = self._client.get_collection(name, embedding_function=None)
            except Exception as exc:  # noqa: BLE001
                missing = "does not exist" in str(exc).lower()
                if not (missing or type(exc).__name__ == "NotFoundError"):
                    raise BackendUnavailable(f"chroma ({self._where}): {exc}") from exc
                if not create:
                    return None
                try:
                    col = self._client.get_or_create_collection(
                        name,
                        metadata={
                            "hnsw:space": "cosine",
                            "task": task,
                            "kind": kind,
                            "group": group,
                            "embedder": self._embedder_name,
                            "document": document_version(),
                        },
                        embedding_function=None,
                    )
                except Exception as exc2:  # noqa: BLE001
                    raise BackendUnavailable(f"chroma ({self._where}): {exc2}") from exc2
            used = (col.metadata or {}).get("embedder")
            if used and used != self._embedder_name:
                raise Conflict(
                    f"vector index at {self._where} was built with embedder {used!r}, "
                    f"this store uses {self._embedder_name!r}; run `labswarm memory reindex "
                    "--full` to rebuild it"
                )
            made_by = str((col.metadata or {}).get("document", ""))
            if made_by != document_version() and name not in self.stale:
                self.stale.add(name)
                log.warning(
                    "vector index %s (%s): collection %s was embedded with document recipe "
                    "%r, this labswarm writes %r; search still works, `labswarm memory "
                    "reindex --full` re-embeds it",
                    self._where,
                    kind,
                    name,
                    made_by or "1",
                    document_version(),
                )
            self._cols[name] = col
            while len(self._cols) > self._max_handles:
                self._cols.popitem(last=False)
            if create:
                self._listing = None
            return col

    @property
    def cached_handles(self) -> int:
        """Collection handles cached now (at most ``max_handles``)."""
        return len(self._cols)

    def collection_count(self) -> int:
        """Labswarm collections in the index (what ``max_tasks`` bounds)."""
        return len(self._ours())

    def _ours(self) -> list[Any]:
        try:
            cols = self._client.list_collections()
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"chroma ({self._where}): {exc}") from exc
        return [c for c in cols if c.name.startswith(PREFIX)]

    def groups(self, kind: str) -> list[tuple[str, str]]:
        """(task, group) pairs that have a collection of this kind. Cached for
        ``LISTING_TTL`` seconds; this process's own new collections show at once, other
        processes' within the TTL."""
        listing = self._listing
        if listing is None or time.monotonic() - listing[0] > LISTING_TTL:
            by_kind: dict[str, list[tuple[str, str]]] = {k: [] for k in KINDS}
            for col in self._ours():
                meta = col.metadata or {}
                pair = (str(meta.get("task", "")), str(meta.get("group", "")))
                by_kind.setdefault(str(meta.get("kind", "")), []).append(pair)
            listing = (time.monotonic(), by_kind)
            self._listing = listing
        return list(listing[1].get(kind, []))

    # -- writes --------------------------------------------------------------

    def upsert(
        self,
        kind: str,
        task: str,
        group: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        texts: Sequence[str],
    ) -> None:
        if not ids:
            return
        col = self._collection(kind, task, group, create=True)
        assert col is not None  # create=True never answers None
        with self._lock:
            for i in range(0, len(ids), self._batch):
                j = i + self._batch
                try:
                    col.upsert(
                        ids=list(ids[i:j]),
                        embeddings=[list(v) for v in vectors[i:j]],
                        documents=list(texts[i:j]),
                    )
                except Exception as exc:  # noqa: BLE001
                    self._cols.pop(collection_name(kind, task, group), None)
                    raise BackendUnavailable(f"chroma ({self._where}): {exc}") from exc

    def clear(self) -> None:
        """Delete every labswarm collection (before a full rebuild)."""
        with self._lock:
            for col in self._ours():
                self._client.delete_collection(col.name)
            self._cols.clear()
            self.stale.clear()
            self._listing = None

    # -- reads ---------------------------------------------------------------

    def query(
        self, kind: str, task: str, group: str, vector: Sequence[float], n: int
    ) -> list[IndexHit]:
        col = self._collection(kind, task, group, create=False)
        if col is None:
            return []
        try:
            res = col.query(
                query_embeddings=[list(vector)],
                n_results=max(1, n),
                include=["documents", "distances"],
            )
        except Exception as exc:  # noqa: BLE001
            with self._lock:
                self._cols.pop(collection_name(kind, task, group), None)
            raise BackendUnavailable(f"chroma ({self._where}): {exc}") from exc
        ids = res["ids"][0]
        dists = res["distances"][0]
        docs = res["documents"][0]
        return [
            IndexHit(id=i, score=1.0 - float(d), text=t or "")
            for i, d, t in zip(ids, dists, docs, strict=True)
        ]

    def count(self) -> int:
        """Items in every labswarm collection."""
        return sum(int(col.count()) for col in self._ours())

    def close(self) -> None:
        with self._lock:
            self._cols.clear()
