"""Write endpoints and their guards: the bearer token (401 / 403 / works), a read-only
server, bad bodies (422 naming the field, nothing stored), conflicts (nothing changed),
oversized bodies (413), and the HTTP store raising the same error classes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from memory._http import HTTPStore
from memory.base import Store
from memory.errors import AlreadyClaimed, AlreadyRan, Conflict, InvalidInput, MemoryError_, NotFound
from memory.models import ClaimCreate, ExperimentCreate, FindingCreate, Status
from tests.server.conftest import AUTH
from tests.server.http_backend import TOKEN, serve_store

TASK = "server-writes-test"


def trace_body(**over: Any) -> dict[str, Any]:
    body = {
        "task": TASK,
        "fingerprint": "fp-write",
        "status": "discard",
        "metric": 1.01,
        "hypothesis": "lower the embedding learning rate",
    }
    return body | over


def count(api: httpx.Client, **params: Any) -> int:
    return api.get("/api/experiments", params={"task": TASK, **params}).json()["count"]


@pytest.mark.parametrize(
    ("headers", "code", "name"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong-token"}, 403, "forbidden"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
    ],
)
def test_writes_need_the_right_token(
    api: httpx.Client, headers: dict[str, str], code: int, name: str
) -> None:
    before = count(api)
    requests = [
        ("POST", "/api/experiments", trace_body(id="tok-1")),
        ("POST", "/api/claims", {"task": TASK, "fingerprint": "fp-tok"}),
        ("POST", "/api/findings", [{"change": "x", "outcome": "note", "source": "t"}]),
        ("PUT", "/api/swarms", {"task": TASK}),
        ("PUT", "/api/agents", {"swarm_id": "s", "name": "a"}),
        ("POST", "/api/import", {"traces": [trace_body(id="tok-2")]}),
        ("POST", "/api/reindex", None),
    ]
    for method, path, body in requests:
        response = api.request(method, path, json=body, headers=headers)
        assert response.status_code == code, (path, response.text)
        assert response.json()["error"] == name
    if code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert count(api) == before


def test_write_with_the_token_is_stored_and_readable(api: httpx.Client) -> None:
    response = api.post("/api/experiments", json=trace_body(id="w-1"), headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "w-1"
    assert api.get("/api/experiments/w-1").json()["hypothesis"].startswith("lower the")
    # the same record again: a no-op returning the stored one (safe retries)
    again = api.post("/api/experiments", json=trace_body(id="w-1"), headers=AUTH)
    assert again.status_code == 201 and again.json()["created_at"] == response.json()["created_at"]
    assert count(api) == 1


def test_conflicting_rewrite_is_409_and_changes_nothing(api: httpx.Client) -> None:
    api.post("/api/experiments", json=trace_body(id="w-2", fingerprint="fp-2"), headers=AUTH)
    response = api.post(
        "/api/experiments", json=trace_body(id="w-2", fingerprint="fp-2", metric=0.5), headers=AUTH
    )
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert api.get("/api/experiments/w-2").json()["metric"] == 1.01


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in trace_body().items() if k != "fingerprint"}, "body.fingerprint"),
        (trace_body(status="great"), "body.status"),
        (trace_body(metric="fast"), "body.metric"),
        (trace_body(task="x" * 201), "body.task"),
        (trace_body(knobs=[1, 2]), "body.knobs"),
    ],
)
def test_bad_body_is_422_naming_the_field_and_stores_nothing(
    api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = count(api)
    response = api.post("/api/experiments", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert field in response.json()["message"]
    assert count(api) == before


def test_body_that_is_not_json_is_422(api: httpx.Client) -> None:
    response = api.post(
        "/api/experiments",
        content=b"{not json",
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"] == "invalid_input"


def test_claim_release_cycle(api: httpx.Client) -> None:
    body = {"task": TASK, "fingerprint": "fp-claim", "agent_id": "x/a0", "hypothesis": "h"}
    claim = api.post("/api/claims", json=body, headers=AUTH)
    assert claim.status_code == 201, claim.text
    taken = api.post("/api/claims", json=body, headers=AUTH)
    assert taken.status_code == 409 and taken.json()["error"] == "already_claimed"
    listed = api.get("/api/claims", params={"task": TASK}).json()
    assert [c["id"] for c in listed["data"]] == [claim.json()["id"]]
    bodyless = AUTH | {"X-Labswarm-Write": "1"}  # a write without a body names itself
    released = api.post(f"/api/claims/{claim.json()['id']}/release", headers=bodyless)
    assert released.status_code == 200 and released.json()["released_at"] is not None
    assert api.get("/api/claims", params={"task": TASK}).json()["count"] == 0
    missing = api.post("/api/claims/no-such-claim/release", headers=bodyless)
    assert missing.status_code == 404 and "no-such-claim" in missing.json()["message"]


@pytest.mark.parametrize("ttl", [0, -5, 1e17])
def test_claim_ttl_out_of_range_is_422(api: httpx.Client, ttl: float) -> None:
    body = {"task": TASK, "fingerprint": "fp-ttl", "ttl_seconds": ttl}
    response = api.post("/api/claims", json=body, headers=AUTH)
    assert response.status_code == 422 and "ttl_seconds" in response.json()["message"]
    claims = api.get("/api/claims", params={"task": TASK}).json()["data"]
    assert "fp-ttl" not in [c["fingerprint"] for c in claims]


def test_import_is_all_or_nothing(api: httpx.Client) -> None:
    good = trace_body(id="imp-1", fingerprint="fp-imp-1")
    bad = trace_body(id="imp-2", fingerprint="fp-imp-2", status="exploded")
    response = api.post("/api/import", json={"traces": [good, bad]}, headers=AUTH)
    assert response.status_code == 422 and "traces.1.status" in response.json()["message"]
    assert api.get("/api/experiments/imp-1").status_code == 404
    # a task of its own: a finding with task "" applies to every task, the read tests' too
    finding = {
        "id": "imp-f",
        "task": "writes",
        "change": "tied embeddings",
        "outcome": "discard",
        "source": "t",
    }
    body = {"traces": [good], "findings": [finding]}
    first = api.post("/api/import", json=body, headers=AUTH).json()
    assert first == {"added_traces": 1, "added_findings": 1, "skipped": 0}
    second = api.post("/api/import", json=body, headers=AUTH).json()
    assert second == {"added_traces": 0, "added_findings": 0, "skipped": 2}


def test_read_only_server_refuses_every_write(seeded: Store) -> None:
    with serve_store(seeded, token=None) as url, httpx.Client(base_url=url) as client:
        assert client.get("/api/health").json()["writes"] == "disabled"
        assert client.get("/api/experiments", params={"limit": 1}).status_code == 200
        for headers in ({}, AUTH):
            response = client.post("/api/experiments", json=trace_body(id="ro"), headers=headers)
            assert response.status_code == 403
            assert "read-only" in response.json()["message"]
        assert client.get("/api/experiments/ro").status_code == 404


def test_oversized_bodies_get_413_and_store_nothing(seeded: Store) -> None:
    with (
        serve_store(seeded, token=TOKEN, max_body_bytes=4096) as url,
        httpx.Client(base_url=url) as client,
    ):
        big = trace_body(id="big", log_tail="x" * 10_000)
        response = client.post("/api/experiments", json=big, headers=AUTH)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "4096" in response.json()["message"]

        def chunks() -> Any:  # no Content-Length: a streamed body
            for _ in range(10):
                yield b" " * 1000

        streamed = client.post(
            "/api/experiments",
            content=chunks(),
            headers=AUTH | {"Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        small = client.post("/api/experiments", json=trace_body(id="small-ok"), headers=AUTH)
        assert small.status_code == 201
        assert client.get("/api/experiments/big").status_code == 404


def test_http_store_raises_the_same_error_classes(server_url: str) -> None:
    with HTTPStore(server_url, token=TOKEN) as store:
        with pytest.raises(NotFound, match="no-such-id"):
            store.get_trace("no-such-id")
        with pytest.raises(NotFound):
            store.release("no-such-claim")
        done = store.add_trace(
            ExperimentCreate(task=TASK, fingerprint="fp-ran", status=Status.keep, metric=0.9)
        )
        with pytest.raises(AlreadyRan):
            store.claim(ClaimCreate(task=TASK, fingerprint="fp-ran"))
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-held"))
        with pytest.raises(AlreadyClaimed):
            store.claim(ClaimCreate(task=TASK, fingerprint="fp-held"))
        with pytest.raises(Conflict):
            store.add_trace(
                ExperimentCreate(
                    id=done.id, task=TASK, fingerprint="fp-other", status=Status.discard
                )
            )
        with pytest.raises(InvalidInput, match="limit"):
            store.query_findings(limit=0)
        assert store.champion("no-such-task") is None
        added = store.add_findings(
            [FindingCreate(task=TASK, change="qk norm", outcome="keep", source="test")]
        )
        assert store.query_findings(task=TASK).data[0].id == added[0].id
    with HTTPStore(server_url, token="wrong") as store, pytest.raises(MemoryError_) as info:
        store.add_trace(ExperimentCreate(task=TASK, fingerprint="fp-x", status=Status.crash))
    assert "forbidden" in str(info.value)


def test_http_store_reports_an_unreachable_server() -> None:
    from memory.errors import BackendUnavailable
    from tests.backends import free_port

    with HTTPStore(f"http://127.0.0.1:{free_port()}", retries=1) as store:
        with pytest.raises(BackendUnavailable, match="unreachable"):
            store.stats()


def test_get_store_resolves_an_http_url_with_the_token_from_the_environment(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory import get_store

    monkeypatch.setenv("LABSWARM_TOKEN", TOKEN)
    with get_store(server_url) as store:
        assert isinstance(store, HTTPStore)
        added = store.add_trace(
            ExperimentCreate(task=TASK, fingerprint="fp-resolved", status=Status.discard)
        )
        assert store.get_trace(added.id).fingerprint == "fp-resolved"
