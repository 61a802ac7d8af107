"""A copy of the traces that match one query, kept up to date by reading only what is new.

Traces are never changed nor deleted once written, so a count of the matching traces tells
whether anything was added. ``TraceMirror.refresh`` counts (one cheap query); when the
count moved it reads the traces created since the newest one it holds, less ``OVERLAP``
(writers whose clocks or commits lag), and reads everything again if it then holds fewer
than the count (a commit later than the overlap). Used where an agent's iteration would
otherwise read every trace of its task: ``Store.evidence`` (the judge's stats, noise and
champion) and ``memory.insights``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from memory.models import ExperimentPublic, TraceQuery

if TYPE_CHECKING:
    from memory.base import Store

OVERLAP = timedelta(minutes=2)  # re-read window for traces committed late


def created(t: ExperimentPublic) -> datetime:
    """A trace's ``created_at``, aware UTC."""
    return t.created_at if t.created_at.tzinfo is not None else t.created_at.replace(tzinfo=UTC)


def _whole(t: ExperimentPublic) -> ExperimentPublic:
    return t


@dataclass
class TraceMirror:
    """The traces matching ``query`` (its sort, limit and offset ignored), each passed
    through ``keep`` (e.g. to drop large fields) as it is read."""

    query: TraceQuery
    keep: Callable[[ExperimentPublic], ExperimentPublic] = _whole
    traces: dict[str, ExperimentPublic] = field(default_factory=dict)
    newest: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self, store: Store) -> list[ExperimentPublic]:
        """Bring the copy up to ``store``; the traces it did not hold before, in the order
        they were read (empty: nothing was added). The overlap's re-read traces are not
        among them, so a caller that keeps sums over the copy adds only these."""
        total = store.count(self.query)
        if total == len(self.traces):
            return []
        added: dict[str, ExperimentPublic] = {}
        since = self.newest - OVERLAP if self.newest is not None else None
        for t in store.every_trace(self.query.model_copy(update={"since": since})):
            if t.id not in self.traces:
                added[t.id] = self.traces[t.id] = self.keep(t)
        if len(self.traces) < total:  # more: runs committed after the count, also read
            for t in store.every_trace(self.query):
                if t.id not in self.traces:
                    added[t.id] = self.traces[t.id] = self.keep(t)
        self.newest = max((created(t) for t in self.traces.values()), default=None)
        return list(added.values())

    def oldest_first(self) -> list[ExperimentPublic]:
        """The copy in the order the traces were created (ties by id)."""
        return sorted(self.traces.values(), key=lambda t: (created(t), t.id))
