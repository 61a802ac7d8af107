"""The cap on distinct task names in one memory (``max_tasks``, ``$LABSWARM_MAX_TASKS``).

Why: the vector index keeps one Chroma collection per (task, status) for traces and one per
task for findings (``memory._index``), so that a task or status filter is a choice of
collection, not a slow Chroma ``where`` clause. Chroma holds each collection it has touched
in memory for the life of the process (about 2.6 MB of RSS per collection in the local
client and in ``chroma run``; dropping the Python handle does not free it, and chroma 1.x
ignores its LRU segment-cache setting), and any writer may name any task. Without a cap,
300 tiny writes with new task names cost a server ~770 MB.

The bound: at most ``max_tasks`` distinct task names have traces or findings (claims and
swarms make no collections and are not counted), so the index holds at most
``max_tasks * COLLECTIONS_PER_TASK`` collections (7 trace statuses + findings); with the
default 64 tasks that is 512 collections, about 1.3 GB in the worst case where every
task has every status, ~0.6 GB for the usual 3-4 statuses. A write that would add a new task
name beyond the cap raises ``LimitExceeded`` (HTTP 409) naming the limit and the setting;
tasks already present always take more records.

Within one process the check is exact (a lock); across processes sharing PostgreSQL, the
known names are re-read from SQL whenever a name is new, so only writers racing to add
different new names at the same moment can pass the cap together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from memory.errors import LimitExceeded
from memory.models import Status

COLLECTIONS_PER_TASK = len(Status) + 1  # trace collections by status + one for findings


class TaskCap:
    """Admits records of known tasks, and of new tasks while fewer than ``limit`` exist.

    ``names()`` returns the task names stored now (read from SQL)."""

    def __init__(self, limit: int, names: Callable[[], set[str]], where: str = "") -> None:
        if limit < 1:
            raise ValueError(f"max_tasks must be >= 1, got {limit}")
        self.limit = limit
        self._names = names
        self._where = where
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def admit(self, tasks: Iterable[str]) -> None:
        """Raise ``LimitExceeded`` if ``tasks`` would take the memory past ``limit``
        distinct task names; otherwise count them as present from now on."""
        wanted = set(tasks)
        known = self._known
        if known is not None and wanted <= known:
            return  # the common case: no lock, no SQL
        with self._lock:
            self._known = known = self._names()  # other processes may have added some
            new = wanted - known
            if not new:
                return
            if len(known) + len(new) > self.limit:
                shown = ", ".join(repr(t[:60]) for t in sorted(new)[:3])
                raise LimitExceeded(
                    f"memory{f' ({self._where})' if self._where else ''} holds "
                    f"{len(known)} task names and max_tasks is {self.limit}: refusing the new "
                    f"task name(s) {shown}; raise LABSWARM_MAX_TASKS (each task costs up to "
                    f"{COLLECTIONS_PER_TASK} vector-index collections) or reuse a task name"
                )
            known |= new
