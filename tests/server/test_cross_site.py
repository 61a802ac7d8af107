"""What a foreign web page can make a browser send is refused (security review, finding 4):
write routes take only their declared content type (415), an open-writes server takes
writes only with ``X-Labswarm-Write: 1`` or from its own origin (403), an unknown ``Host``
is refused (DNS rebinding, 400); and 405 answers list the allowed methods (finding 16).
Everything against a real uvicorn on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory import get_store
from memory._http import HTTPStore
from memory.base import Store
from memory.models import ClaimCreate, ExperimentCreate, Status
from server.limits import LOOPBACK_NAMES, trusted_hosts
from tests.server.conftest import AUTH
from tests.server.http_backend import TOKEN, serve_store

TASK = "cross-site"
# Generous: the first request to a fresh uvicorn on a loaded 2-core machine took over the
# default 5 s once; what is checked is the answer, not its speed.
http = httpx.Client(timeout=60)
EVIL = "https://evil.example"
COMMUNITY_PACK = Path(__file__).resolve().parents[2] / "seeds" / "autoresearch-community.jsonl"


def pack_text() -> str:
    """A one-finding pack: the first finding of the shipped community pack."""
    lines = COMMUNITY_PACK.read_text(encoding="utf-8").splitlines()
    header = {"labswarm_pack": 1, "name": "csrf", "records": 1}
    return f"{json.dumps(header)}\n{lines[1]}\n"


def trace(fingerprint: str) -> dict[str, Any]:
    return {"task": TASK, "fingerprint": fingerprint, "status": "discard", "metric": 1.0}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with get_store(tmp_path / "memory", embedder="hash") as opened:
        yield opened


@pytest.fixture
def open_url(store: Store) -> Iterator[str]:
    with serve_store(store, token=None, open_writes=True) as url:
        yield url


@pytest.fixture
def token_url(store: Store) -> Iterator[str]:
    with serve_store(store, token=TOKEN) as url:
        yield url


def stored(store: Store) -> tuple[int, int]:
    return store.count(), store.query_findings().count


# -- what a cross-site page can send ---------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_cross_site_simple_posts_to_packs_are_refused(
    open_url: str, store: Store, content_type: str
) -> None:
    # exactly what a <form> or a no-cors fetch on any web page sends: no preflight
    before = stored(store)
    browser = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Content-Type": content_type}
    response = http.post(f"{open_url}/api/packs", content=pack_text(), headers=browser)
    assert response.status_code == 403, response.text
    assert "cross-site" in response.json()["message"]
    # an older browser without Sec-Fetch-Site: the Origin alone refuses it
    no_fetch_meta = {"Origin": EVIL, "Content-Type": content_type}
    response = http.post(f"{open_url}/api/packs", content=pack_text(), headers=no_fetch_meta)
    assert response.status_code == 403 and EVIL in response.json()["message"]
    # without Origin and without the header: nothing proves it is not a web page
    response = http.post(
        f"{open_url}/api/packs", content=pack_text(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 403 and "X-Labswarm-Write" in response.json()["message"]
    assert stored(store) == before


def test_packs_need_their_content_type_even_with_the_write_header(
    open_url: str, store: Store
) -> None:
    before = stored(store)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        headers = {"X-Labswarm-Write": "1", "Content-Type": content_type}
        response = http.post(f"{open_url}/api/packs", content=pack_text(), headers=headers)
        assert response.status_code == 415, response.text
        body = response.json()
        assert body["error"] == "unsupported_media_type"
        assert "application/x-ndjson" in body["message"]
    assert stored(store) == before
    for content_type in ("application/x-ndjson", "application/jsonl; charset=utf-8"):
        headers = {"X-Labswarm-Write": "1", "Content-Type": content_type}
        response = http.post(f"{open_url}/api/packs", content=pack_text(), headers=headers)
        assert response.status_code == 200, response.text
    assert stored(store) == (before[0], before[1] + 1)  # the same finding: imported once


def test_open_writes_need_the_header_or_the_same_origin(open_url: str, store: Store) -> None:
    url = f"{open_url}/api/experiments"
    refused = [
        {},  # a program that forgot the header (or a page on an old browser)
        {"Origin": EVIL, "X-Labswarm-Write": "1"},
        {"Sec-Fetch-Site": "cross-site", "X-Labswarm-Write": "1"},
        {"Sec-Fetch-Site": "same-site", "X-Labswarm-Write": "1"},  # another port of localhost
        {"Origin": "null"},  # a sandboxed frame or a file:// page
    ]
    for headers in refused:
        response = http.post(url, json=trace("refused"), headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert response.json()["error"] == "forbidden"
    assert store.count() == 0
    accepted = [
        {"X-Labswarm-Write": "1"},  # a program (curl, the HTTP store)
        {"Origin": open_url},  # the dashboard's own page
        {"Sec-Fetch-Site": "same-origin"},
    ]
    for n, headers in enumerate(accepted):
        response = http.post(url, json=trace(f"ok-{n}"), headers=headers)
        assert response.status_code == 201, (headers, response.text)
    assert store.count() == len(accepted)


def test_reindex_needs_a_json_body_or_the_header(
    open_url: str, token_url: str, store: Store
) -> None:
    # open mode: the bare cross-site POST of the review, and a form, are refused
    bare = http.post(f"{open_url}/api/reindex", params={"full": "true"})
    assert bare.status_code == 403
    form = http.post(
        f"{open_url}/api/reindex?full=true",
        content=b"a=b",
        headers={"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 403
    ok = http.post(f"{open_url}/api/reindex", headers={"X-Labswarm-Write": "1"})
    assert ok.status_code == 200 and ok.json() == {"indexed": 0}
    # token mode: the token is not enough for a body-less write without either
    bare = http.post(f"{token_url}/api/reindex", headers=AUTH)
    assert bare.status_code == 415 and "X-Labswarm-Write" in bare.json()["message"]
    for extra in ({"X-Labswarm-Write": "1"}, {"Content-Type": "application/json"}):
        response = http.post(f"{token_url}/api/reindex", headers=AUTH | extra)
        assert response.status_code == 200, response.text


def write_operations(api: httpx.Client) -> list[tuple[str, str]]:
    paths = api.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path.replace("{claim_id}", "c1"))
        for path, operations in paths.items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    ]


def test_every_write_route_refuses_text_plain_and_forms(token_url: str, store: Store) -> None:
    with httpx.Client(base_url=token_url, headers=AUTH) as api:
        operations = write_operations(api)
        assert len(operations) >= 9  # experiments, claims (2), findings, swarms, agents, ...
        for method, path in operations:
            for content_type in ("text/plain", "application/x-www-form-urlencoded"):
                response = api.request(
                    method, path, content=b'{"task": "x"}', headers={"Content-Type": content_type}
                )
                assert response.status_code == 415, (method, path, response.text)
                assert "Content-Type" in response.json()["message"]
    assert stored(store) == (0, 0)


def test_http_store_writes_to_an_open_server(open_url: str, store: Store) -> None:
    # the HTTP store sends X-Labswarm-Write: 1 on every request, body or not
    with HTTPStore(open_url, token="") as remote:
        remote.add_trace(
            ExperimentCreate(task=TASK, fingerprint="h1", status=Status.keep, metric=1.0)
        )
        claim = remote.claim(ClaimCreate(task=TASK, fingerprint="h2"))
        assert remote.release(claim.id).released_at is not None
        assert remote.reindex() == 0
    assert store.count() == 1


# -- DNS rebinding: the Host header ----------------------------------------------------


def test_unknown_host_is_refused(open_url: str) -> None:
    port = open_url.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        response = http.get(f"{open_url}/api/health", headers={"Host": host})
        assert response.status_code == 400, host
        assert response.json()["error"] == "bad_host"
        assert "LABSWARM_TRUSTED_HOSTS" in response.json()["message"]
        write = http.post(
            f"{open_url}/api/experiments",
            json=trace("rebound"),
            headers={"Host": host, "X-Labswarm-Write": "1"},
        )
        assert write.status_code == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        response = http.get(f"{open_url}/api/health", headers={"Host": host})
        assert response.status_code == 200, host


def test_trusted_hosts_setting_adds_names(store: Store) -> None:
    with serve_store(store, token=TOKEN, trusted_hosts=["memory.lab.example"]) as url:
        named = http.get(f"{url}/api/health", headers={"Host": "memory.lab.example:8765"})
        assert named.status_code == 200
        other = http.get(f"{url}/api/health", headers={"Host": "other.example"})
        assert other.status_code == 400


def test_trusted_host_list() -> None:
    assert trusted_hosts("127.0.0.1", []) == list(LOOPBACK_NAMES)
    assert trusted_hosts("::1", ["Lab.Example:80"]) == [*LOOPBACK_NAMES, "lab.example"]
    assert trusted_hosts("10.0.0.5", []) == [*LOOPBACK_NAMES, "10.0.0.5"]
    # bound to every interface, clients may use any of the machine's names ...
    assert trusted_hosts("0.0.0.0", []) is None
    assert trusted_hosts("::", []) is None
    # ... unless the names are given; "*" turns the check off
    assert trusted_hosts("0.0.0.0", ["lab.example"]) == [*LOOPBACK_NAMES, "lab.example"]
    assert trusted_hosts("127.0.0.1", ["*"]) is None


# -- 405 names the allowed methods -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/experiments", "GET, POST"),
        ("PATCH", "/api/swarms", "GET, PUT"),
        ("GET", "/api/claims/c1/release", "POST"),
        ("POST", "/api/health", "GET"),
        ("OPTIONS", "/api/experiments", "GET, POST"),  # a CORS preflight: no CORS here
    ],
)
def test_405_lists_the_allowed_methods(
    token_url: str, method: str, path: str, allowed: str
) -> None:
    response = http.request(method, f"{token_url}{path}", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"] == "method_not_allowed"
    assert response.json()["message"].endswith(allowed.replace(", ", " or "))
    assert "access-control-allow-origin" not in response.headers
