"""Write-behind indexing: one background thread per store embeds and upserts new rows in
batches.

Why: one Chroma upsert costs ~40 ms here whatever its size up to ~1000 items (about 1 ms per
item in a batch of 1000), and MiniLM embeds batches far faster than single texts. Writers
only commit SQL and enqueue; the thread lingers up to ``linger`` seconds after the first
pending row (cut short by ``flush``) and then drains everything pending at once, so
consecutive and concurrent writers share batches. ``flush()`` waits until every row enqueued
before the call is indexed (or has failed and stays ``indexed=False``); the store calls it
before reads of the index, so a process always finds its own writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


class IndexWriter:
    """Runs ``work(kind, rows)`` on batches of enqueued rows in a daemon thread.

    ``work`` handles (and logs) its own failures; an exception escaping it is logged here.
    """

    def __init__(
        self,
        work: Callable[[str, list[Any]], Any],
        name: str = "labswarm-index",
        linger: float = 0.05,
    ) -> None:
        self._work = work
        self._linger = linger
        self._waiting = 0  # threads inside flush(): process at once
        self._name = name
        self._cond = threading.Condition()
        self._pending: list[tuple[int, str, list[Any]]] = []
        self._submitted = 0
        self._done = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, rows: Sequence[Any]) -> None:
        if not rows:
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("the store is closed")
            self._submitted += 1
            self._pending.append((self._submitted, kind, list(rows)))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is processed; False on timeout."""
        with self._cond:
            target = self._submitted
            self._waiting += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._waiting -= 1

    def close(self) -> None:
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._closed)
                if not self._pending:
                    return
                self._cond.wait_for(lambda: self._waiting > 0 or self._closed, self._linger)
                batch, self._pending = self._pending, []
            by_kind: dict[str, dict[str, Any]] = {}
            for _, kind, rows in batch:
                unique = by_kind.setdefault(kind, {})
                for row in rows:
                    unique[row.id] = row  # one upsert per id
            for kind, by_id in by_kind.items():
                try:
                    self._work(kind, list(by_id.values()))
                except Exception:
                    log.exception("indexing %d %s row(s) failed", len(by_id), kind)
            with self._cond:
                self._done = batch[-1][0]
                self._cond.notify_all()
