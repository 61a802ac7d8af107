"""Errors of the memory layer.

Every error carries a stable ``name`` and an HTTP ``code`` so that the server maps
them to responses in one handler and the HTTP store re-raises the same class from
the response body (``{"error": name, "message": ...}``).
"""

from __future__ import annotations


class MemoryError_(Exception):
    """Base class. ``name`` is stable across versions; ``code`` is the HTTP status."""

    name = "memory_error"
    code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(MemoryError_):
    """No experiment, claim, finding, swarm or agent with that id."""

    name = "not_found"
    code = 404


class InvalidInput(MemoryError_):
    """A record, query or pack is malformed; the message names the field (and file:line)."""

    name = "invalid_input"
    code = 422


class AlreadyClaimed(MemoryError_):
    """Another active (unexpired, unreleased) claim holds this fingerprint."""

    name = "already_claimed"
    code = 409


class AlreadyRan(MemoryError_):
    """A finished experiment of this task already ran this program fingerprint."""

    name = "already_ran"
    code = 409


class Conflict(MemoryError_):
    """A record with this id exists with different content."""

    name = "conflict"
    code = 409


class BackendUnavailable(MemoryError_):
    """The SQL database, the vector index or the memory server cannot be reached."""

    name = "backend_unavailable"
    code = 503


class LimitExceeded(MemoryError_):
    """The memory is full for this kind of thing (e.g. ``max_tasks`` distinct task names);
    the message names the limit and the setting that raises it."""

    name = "limit_exceeded"
    code = 409


class StoreInUse(MemoryError_):
    """Another process owns this embedded store directory (one process per directory);
    the message names that process and the alternative (``labswarm serve``)."""

    name = "store_in_use"
    code = 409


ERRORS: dict[str, type[MemoryError_]] = {
    cls.name: cls
    for cls in (
        MemoryError_,
        NotFound,
        InvalidInput,
        AlreadyClaimed,
        AlreadyRan,
        Conflict,
        BackendUnavailable,
        LimitExceeded,
        StoreInUse,
    )
}
