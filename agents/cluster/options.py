"""What a cluster swarm is configured with: how it uses Ray (:class:`ClusterConfig`), how
its agents reach the memory (:func:`memory_access`, or a :class:`ServedMemory` the driver
starts), and what ``--devices`` means under Ray (:func:`share`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlparse

from agents.cluster.actor import MemoryAccess
from agents.swarm import SwarmError
from memory.base import Store
from memory.settings import Settings


class ServedMemory(Protocol):
    """The driver's store served over HTTP for the agents (see agents/cli/cluster_memory)."""

    url: str
    token: str

    def close(self) -> None: ...


MemoryServer = Callable[[Store, str, str], ServedMemory]  # (store, host, token) -> served


@dataclass
class ClusterConfig:
    """How the swarm uses Ray (``labswarm run --ray ADDRESS``)."""

    address: str = "auto"  # auto | local | host:port | ray://host:10001
    node_dir: str | None = None  # agents' directories on each node (None: its tmp dir)
    max_restarts: int = 3  # times Ray restarts an agent whose process or node died
    placement_timeout: float = 300.0  # seconds to wait for every agent to be placed
    lost_after: float = 60.0  # an agent unanswered this long, all others done, is given up
    stop_grace: float = 60.0  # after a stop, seconds before busy actors are killed
    poll_s: float = 0.5


def memory_access(target: str | None, settings: Settings) -> MemoryAccess | None:
    """How the agents reach ``target`` themselves, or None when the driver must serve it
    (an embedded store, or a PostgreSQL store whose vector index is a local directory)."""
    if not target:
        return None
    parsed = urlparse(target) if "://" in target else None
    scheme = parsed.scheme.lower() if parsed is not None else ""
    token = settings.token.get_secret_value() if settings.token is not None else None
    common = {"embedder": settings.embedder, "max_tasks": settings.max_tasks}
    if scheme in ("http", "https"):
        return MemoryAccess(target, token=token, **common)  # type: ignore[arg-type]
    if scheme.startswith("postgres") and parsed is not None:
        chroma = parse_qs(parsed.query).get("chroma", [settings.chroma_url or ""])[0]
        if chroma.startswith(("http://", "https://")):
            return MemoryAccess(target, chroma_url=settings.chroma_url, **common)  # type: ignore[arg-type]
    return None


def share(devices: str) -> tuple[bool, int]:
    """``--devices`` under Ray: (GPUs wanted when the cluster has some, CPUs per agent)."""
    spec = (devices or "auto").strip().lower()
    if spec == "auto":
        return True, 1
    if spec == "cpu":
        return False, 1
    if spec.startswith("cpu:") and spec[4:].isdigit() and int(spec[4:]) >= 1:
        return False, int(spec[4:])
    raise SwarmError(
        f"--devices {devices!r} with --ray: use auto (one GPU per agent), cpu or cpu:N "
        "(N CPUs per agent); Ray chooses the GPUs"
    )
