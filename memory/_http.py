"""The HTTP store: the ``Store`` interface over a labswarm server's API.

``HTTPStore("http://host:8765", token="...")`` (or ``get_store("http://host:8765")``)
lets agents in other processes and on other machines share one memory. Error bodies
``{"error": name, "message": ...}`` come back as the same ``memory.errors`` classes;
an unreachable server raises ``BackendUnavailable``. Records without an id get one
here, so a request retried after a dropped connection cannot write twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from memory.base import Store
from memory.errors import ERRORS, BackendUnavailable, MemoryError_, NotFound
from memory.insights import InsightReport
from memory.models import (
    AgentCreate,
    AgentPublic,
    ClaimCreate,
    ClaimPublic,
    ExperimentCreate,
    ExperimentPublic,
    FindingCreate,
    FindingPublic,
    ImportResult,
    Lineage,
    Page,
    SearchHit,
    Stats,
    Status,
    SwarmCreate,
    SwarmPublic,
    TraceQuery,
    new_id,
)

log = logging.getLogger(__name__)

_RETRY_PAUSE_S = 0.2
_TRACES = TypeAdapter(Page[ExperimentPublic])
_FINDINGS = TypeAdapter(Page[FindingPublic])
_CLAIMS = TypeAdapter(Page[ClaimPublic])
_SWARMS = TypeAdapter(Page[SwarmPublic])
_AGENTS = TypeAdapter(Page[AgentPublic])
_HITS = TypeAdapter(Page[SearchHit])


def _error_from_response(response: httpx.Response) -> MemoryError_:
    try:
        body = response.json()
        name, message = str(body["error"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:500]
        return MemoryError_(f"memory server answered HTTP {response.status_code}: {text}")
    cls = ERRORS.get(name)
    if cls is None:  # an HTTP-level error (unauthorized, forbidden, payload_too_large, ...)
        return MemoryError_(f"{name} (HTTP {response.status_code}): {message}")
    return cls(message)


R = TypeVar("R", ExperimentCreate, FindingCreate, ClaimCreate, SwarmCreate)


def _with_id(record: R) -> R:
    """The record with a fresh id if it has none (so that a repeated request is a no-op)."""
    return record if record.id is not None else record.model_copy(update={"id": new_id()})


def _trace_params(query: TraceQuery) -> list[tuple[str, str]]:
    """``query`` as ``GET /api/experiments`` parameters (lists repeat their key; a
    ``False`` flag such as ``trusted`` is its default and is left out)."""
    params: list[tuple[str, str]] = []
    for key, value in query.model_dump(exclude_none=True).items():
        if isinstance(value, bool):
            if value:
                params.append((key, "true"))
        elif isinstance(value, list):
            params.extend((key, str(item)) for item in value)
        elif hasattr(value, "isoformat"):
            params.append((key, value.isoformat()))
        else:
            params.append((key, str(value)))
    return params


class HTTPStore(Store):
    """A ``Store`` whose every method is one request to a labswarm server.

    Thread-safe (one pooled ``httpx.Client``) and safe across processes and machines,
    since the server serialises writes on its own store. ``token`` is the bearer token
    for writes (``get_store`` passes ``Settings.token``, i.e. ``$LABSWARM_TOKEN``); reads
    need none.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        max_connections: int = 64,
    ) -> None:
        base = url.rstrip("/")
        if base.endswith("/api"):
            base = base[: -len("/api")]
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://..., got {url!r}")
        self.url = base
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        headers = {"X-Labswarm-Write": "1", **auth}  # the server's proof of a non-browser write
        self._retries = max(0, retries)
        self._client = httpx.Client(
            base_url=base,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def __repr__(self) -> str:
        return f"HTTPStore({self.url!r})"

    # -- transport -----------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Any = None,
        json: Any = None,
    ) -> Any:
        """Send one request; retry after connection failures (any failure, for requests
        that are safe to repeat); raise the server's error class for error answers."""
        attempt = 0
        while True:
            try:
                response = self._client.request(method, path, params=params, json=json)
                break
            except httpx.TransportError as exc:
                # a refused connection never reached the server: always safe to repeat
                retryable = idempotent or isinstance(exc, httpx.ConnectError)
                if not retryable or attempt >= self._retries:
                    raise BackendUnavailable(
                        f"memory server {self.url} unreachable ({method} {path}): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                attempt += 1
                log.warning("retrying %s %s after %s", method, path, type(exc).__name__)
                time.sleep(_RETRY_PAUSE_S * attempt)
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response.json()

    def _get(self, path: str, params: Any = None) -> Any:
        return self._request("GET", path, idempotent=True, params=params)

    # -- traces --------------------------------------------------------------

    def add_trace(self, trace: ExperimentCreate) -> ExperimentPublic:
        body = _with_id(trace).model_dump(mode="json")
        return ExperimentPublic.model_validate(
            self._request("POST", "/api/experiments", idempotent=True, json=body)
        )

    def get_trace(self, trace_id: str) -> ExperimentPublic:
        return ExperimentPublic.model_validate(
            self._get(f"/api/experiments/{quote(trace_id, safe='')}")
        )

    def query_traces(self, query: TraceQuery) -> Page[ExperimentPublic]:
        return _TRACES.validate_python(self._get("/api/experiments", _trace_params(query)))

    def lineage(self, trace_id: str) -> Lineage:
        return Lineage.model_validate(
            self._get(f"/api/experiments/{quote(trace_id, safe='')}/lineage")
        )

    def insights(
        self, task: str, hardware: str | None = None, budget: float | None = None
    ) -> InsightReport:
        """``GET /api/insights``: the server computes (and caches) them on its own store;
        a task the server has nothing of is an empty report, as on every backend."""
        params: dict[str, Any] = {"task": task}
        if hardware is not None:
            params["hardware"] = hardware
        if budget is not None:
            params["budget"] = budget
        try:
            return InsightReport.model_validate(self._get("/api/insights", params))
        except NotFound:
            return InsightReport(
                task=task, hardware=hardware, budget_s=budget, traces=0, newest=None
            )

    # -- semantic search -----------------------------------------------------

    def search(
        self,
        text: str,
        *,
        kinds: Sequence[str] = ("trace", "finding"),
        task: str | None = None,
        status: Sequence[Status] | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        params: list[tuple[str, str]] = [("q", text), ("limit", str(limit))]
        params.extend(("kinds", kind) for kind in kinds)
        if task is not None:
            params.append(("task", task))
        params.extend(("status", str(s)) for s in status or ())
        return _HITS.validate_python(self._get("/api/search", params)).data

    # -- claims --------------------------------------------------------------

    def claim(self, claim: ClaimCreate) -> ClaimPublic:
        body = _with_id(claim).model_dump(mode="json")
        # not repeated after a lost answer: the repeat would see its own claim as taken
        return ClaimPublic.model_validate(
            self._request("POST", "/api/claims", idempotent=False, json=body)
        )

    def release(self, claim_id: str) -> ClaimPublic:
        path = f"/api/claims/{quote(claim_id, safe='')}/release"
        return ClaimPublic.model_validate(self._request("POST", path, idempotent=True))

    def active_claims(self, task: str | None = None) -> list[ClaimPublic]:
        params = {"task": task} if task is not None else None
        return _CLAIMS.validate_python(self._get("/api/claims", params)).data

    # -- findings ------------------------------------------------------------

    def add_findings(self, findings: Sequence[FindingCreate]) -> list[FindingPublic]:
        body = [_with_id(f).model_dump(mode="json") for f in findings]
        answer = self._request("POST", "/api/findings", idempotent=True, json=body)
        return _FINDINGS.validate_python(answer).data

    def query_findings(
        self,
        *,
        task: str | None = None,
        hardware: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[FindingPublic]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if task is not None:
            params["task"] = task
        if hardware is not None:
            params["hardware"] = hardware
        return _FINDINGS.validate_python(self._get("/api/findings", params))

    # -- swarms and agents ---------------------------------------------------

    def upsert_swarm(self, swarm: SwarmCreate) -> SwarmPublic:
        body = _with_id(swarm).model_dump(mode="json")
        return SwarmPublic.model_validate(
            self._request("PUT", "/api/swarms", idempotent=True, json=body)
        )

    def list_swarms(self, task: str | None = None) -> list[SwarmPublic]:
        params = {"task": task} if task is not None else None
        return _SWARMS.validate_python(self._get("/api/swarms", params)).data

    def upsert_agent(self, agent: AgentCreate) -> AgentPublic:
        body = agent.model_dump(mode="json")
        return AgentPublic.model_validate(
            self._request("PUT", "/api/agents", idempotent=True, json=body)
        )

    def list_agents(self, swarm_id: str | None = None) -> list[AgentPublic]:
        params = {"swarm_id": swarm_id} if swarm_id is not None else None
        return _AGENTS.validate_python(self._get("/api/agents", params)).data

    # -- bulk, stats, maintenance -------------------------------------------

    def import_records(
        self, traces: Sequence[ExperimentCreate], findings: Sequence[FindingCreate]
    ) -> ImportResult:
        # every record gets an id here: the import skips ids already present, so a
        # repeated request adds nothing twice
        body = {
            "traces": [_with_id(t).model_dump(mode="json") for t in traces],
            "findings": [_with_id(f).model_dump(mode="json") for f in findings],
        }
        return ImportResult.model_validate(
            self._request("POST", "/api/import", idempotent=True, json=body)
        )

    def stats(self, task: str | None = None, swarm_id: str | None = None) -> Stats:
        params: dict[str, str] = {}
        if task is not None:
            params["task"] = task
        if swarm_id is not None:
            params["swarm_id"] = swarm_id
        return Stats.model_validate(self._get("/api/stats", params))

    def reindex(self, full: bool = False) -> int:
        answer = self._request(
            "POST", "/api/reindex", idempotent=True, params={"full": str(full).lower()}
        )
        return int(answer["indexed"])

    def index_count(self) -> int:
        return int(self._get("/api/index/count")["count"])

    def close(self) -> None:
        self._client.close()
