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
    )
}


def error_from_payload(name: str, message: str) -> MemoryError_:
    """Rebuild the error class named ``name`` (unknown names give the base class)."""
    return ERRORS.get(name, MemoryError_)(message)
