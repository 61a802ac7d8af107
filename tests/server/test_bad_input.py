"""Bad input is a 422 naming the field, never a 500, on both backends (security review
2.2, 2.3, 2.7, 2.8, 2.10-2.12, finding 9 and 12): NUL bytes in query and path parameters
(PostgreSQL cannot store them), dates outside the representable range, integers beyond
the database's, non-finite numbers and lone surrogates in bodies, JSON nested too deep.
After each refusal nothing is stored and reads keep working."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from memory.embed import HashEmbedder
from memory.models import ExperimentCreate, Status
from tests.backends import BACKENDS, BackendEnv, Services
from tests.server.conftest import AUTH
from tests.server.http_backend import TOKEN, serve_store

JSON = {"Content-Type": "application/json"}


@pytest.fixture(
    params=["embedded", pytest.param("team", marks=pytest.mark.postgres)], scope="module"
)
def api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    services: Services,
) -> Iterator[httpx.Client]:
    name: str = request.param
    env = BackendEnv(tmp_path_factory.mktemp(f"bad-{name}"), HashEmbedder(), services)
    with BACKENDS[name](env) as store:
        store.add_trace(
            ExperimentCreate(id="ok-1", task="bad", fingerprint="f", status=Status.keep, metric=1)
        )
        with serve_store(store, token=TOKEN) as url, httpx.Client(base_url=url) as client:
            yield client


def assert_422(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert field in body["message"], body["message"]


def reads_still_work(api: httpx.Client) -> None:
    page = api.get("/api/experiments")
    assert page.status_code == 200 and page.json()["count"] == 1
    assert api.get("/api/export", params={"task": "bad"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/experiments", {"task": "a\x00b"}, "query.task"),
        ("/api/experiments", {"fingerprint": "\x00"}, "query.fingerprint"),
        ("/api/stats", {"task": "a\x00b"}, "query.task"),
        ("/api/champion", {"task": "a\x00b"}, "query.task"),
        ("/api/noise", {"task": "a\x00b"}, "query.task"),
        ("/api/noise", {"task": "t", "hardware": "h\x00"}, "query.hardware"),
        ("/api/program-stats", {"task": "t", "fingerprint": "f\x00"}, "query.fingerprint"),
        ("/api/progress", {"task": "a\x00b"}, "query.task"),
        ("/api/claims", {"task": "a\x00b"}, "query.task"),
        ("/api/findings", {"hardware": "h\x00"}, "query.hardware"),
        ("/api/swarms", {"task": "\x00"}, "query.task"),
        ("/api/agents", {"swarm_id": "\x00"}, "query.swarm_id"),
        ("/api/search", {"q": "deeper\x00"}, "query.q"),
        ("/api/export", {"task": "a\x00b"}, "query.task"),
        ("/api/experiments/a%00b", {}, "path.experiment_id"),
        ("/api/experiments/a%00b/lineage", {}, "path.experiment_id"),
    ],
)
def test_nul_bytes_in_parameters_are_422(
    api: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    assert_422(api.get(path, params=params), field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "0001-01-01T00:00:00+14:00"}, "query.since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "query.until"),
        ({"metric_min": "nan"}, "query.metric_min"),
        ({"budget_s": "inf"}, "query.budget_s"),
        ({"offset": str(2**63)}, "query.offset"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
    ],
)
def test_out_of_range_filters_are_422(
    api: httpx.Client, params: dict[str, str], field: str
) -> None:
    assert_422(api.get("/api/experiments", params=params), field)


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


TRACE = '{"task": "bad", "fingerprint": "f2", "status": "discard", %s}'


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        (
            "PUT",
            "/api/agents",
            '{"swarm_id": "s", "name": "a", "experiments": 1e30}',
            "experiments",
        ),
        (
            "PUT",
            "/api/agents",
            '{"swarm_id": "s", "name": "a", "experiments": 99999999999999999999}',
            "experiments",
        ),
        ("POST", "/api/experiments", TRACE % '"metric": NaN', "metric"),
        ("POST", "/api/experiments", TRACE % '"metric": -Infinity', "metric"),
        ("POST", "/api/experiments", TRACE % '"resources": {"x": NaN}', "resources"),
        ("POST", "/api/experiments", TRACE % '"hypothesis": "\\udc80"', "hypothesis"),
        ("POST", "/api/experiments", TRACE % '"hypothesis": "a\\u0000b"', "hypothesis"),
        (
            "POST",
            "/api/experiments",
            TRACE % '"created_at": "0001-01-01T00:00:00+14:00"',
            "created_at",
        ),
        (
            "POST",
            "/api/findings",
            '[{"change": "\\udc80", "outcome": "note", "source": "t"}]',
            "change",
        ),
    ],
)
def test_bad_bodies_are_422_and_store_nothing(
    api: httpx.Client, method: str, path: str, raw: str, field: str
) -> None:
    response = api.request(method, path, content=raw.encode(), headers=AUTH | JSON)
    assert_422(response, field)
    reads_still_work(api)


def test_json_nested_too_deep_is_422_and_reads_keep_working(api: httpx.Client) -> None:
    body = {"task": "bad", "fingerprint": "f3", "status": "discard", "resources": deep(300)}
    response = api.post("/api/experiments", json=body, headers=AUTH)
    assert_422(response, "resources")
    reads_still_work(api)
