"""Schemathesis against the app's own OpenAPI, through a real uvicorn, on both backends
(embedded SQLite + local Chroma; PostgreSQL + ``chroma run``): every operation, reads and
(with the token) writes, in the examples, coverage and fuzzing phases, valid and invalid
inputs (NUL bytes, lone surrogates, huge integers, odd dates ...). The schemathesis CLI
runs as the security review ran it; the test prints how many cases it generated and
fails on any 5xx, or on an answer whose status code or body its OpenAPI does not declare.

``MAX_EXAMPLES`` bounds the fuzzing phase; the coverage phase is bounded by the schema.
On the 2-core development VM both runs together take about 1 minute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.base import Store
from memory.embed import HashEmbedder
from memory.models import ExperimentCreate, FindingCreate, Status
from tests.backends import BACKENDS, BackendEnv, Services
from tests.server.http_backend import TOKEN, serve_store

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MAX_EXAMPLES = 25
SEED = 7
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def seed(store: Store) -> None:
    """A little of everything, so that reads have rows to serialise."""
    parent = store.add_trace(
        ExperimentCreate(task="fuzz", fingerprint="f0", status=Status.keep, metric=1.0)
    )
    store.add_trace(
        ExperimentCreate(
            task="fuzz", fingerprint="f1", status=Status.discard, metric=1.1, parent_id=parent.id
        )
    )
    store.add_findings(
        [FindingCreate(task="fuzz", change="wider MLP", outcome="keep", source="fuzz test")]
    )


@pytest.fixture(
    params=["embedded", pytest.param("team", marks=pytest.mark.postgres)], scope="module"
)
def fuzz_target(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    services: Services,
) -> Iterator[tuple[str, str]]:
    name: str = request.param
    env = BackendEnv(tmp_path_factory.mktemp(f"fuzz-{name}"), HashEmbedder(), services)
    with BACKENDS[name](env) as store:
        seed(store)
        with serve_store(store, token=TOKEN) as url:
            yield name, url


def test_schemathesis_finds_no_server_error(
    fuzz_target: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    backend, url = fuzz_target
    command = [
        SCHEMATHESIS,
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--no-color",
    ]
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.server.fuzz_hooks",  # the x-ndjson serializer
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    out = result.stdout + result.stderr
    found = re.search(r"(\d+) generated, (\d+) passed(?:, (\d+) failed)?", out)
    assert found is not None, out[-5000:]
    generated, failed = int(found.group(1)), int(found.group(3) or 0)
    tested = re.search(r"Tested: (\d+)", out)
    with capsys.disabled():  # shown in the CI log even when output is captured
        print(
            f"\nschemathesis on the {backend} store: {generated} cases generated over "
            f"{tested.group(1) if tested else '?'} operations, {failed} failed"
        )
    assert result.returncode == 0, out[-8000:]
    assert failed == 0 and "Server error" not in out
    assert tested is not None and int(tested.group(1)) >= 24  # every operation
    assert generated >= 1000, "the run generated too few cases to mean anything"
