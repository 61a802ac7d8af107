"""Settings refuse unsafe start-ups; ``labswarm serve`` serves a real store on a real port;
non-search routes do not import the heavy libraries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from server.settings import Settings, is_loopback
from tests.backends import Services, free_port

REPO = Path(__file__).resolve().parents[2]
LABSWARM = str(Path(sys.executable).with_name("labswarm"))


def test_defaults_are_loopback_and_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LABSWARM_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.write_mode == "disabled"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSWARM_TOKEN", "abc")
    monkeypatch.setenv("LABSWARM_HOST", "0.0.0.0")
    monkeypatch.setenv("LABSWARM_MAX_BODY_BYTES", "2048")
    settings = Settings()
    assert settings.write_mode == "token" and settings.max_body_bytes == 2048
    assert settings.token is not None and settings.token.get_secret_value() == "abc"
    assert "abc" not in repr(settings)  # the secret stays out of logs


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_refuses_open_writes_beyond_loopback(host: str) -> None:
    with pytest.raises(ValidationError, match="beyond loopback"):
        Settings(host=host, open_writes=True)
    assert Settings(host=host, token="t").write_mode == "token"
    assert Settings(host=host).write_mode == "disabled"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_open_writes_allowed_on_loopback(host: str) -> None:
    assert is_loopback(host)
    assert Settings(host=host, open_writes=True).write_mode == "open"


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="token"):
        Settings(token="  ")


def test_serve_command_refuses_unsafe_binding(tmp_path: Path) -> None:
    result = subprocess.run(
        [LABSWARM, "serve", "--memory", str(tmp_path / "m")]
        + ["--host", "0.0.0.0", "--open-writes", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"LABSWARM_EMBEDDER": "hash"},
    )
    assert result.returncode == 1
    assert "beyond loopback" in result.stderr
    assert not (tmp_path / "m").exists()  # refused before opening anything


def test_server_settings_are_the_process_settings() -> None:
    # one settings class: the server's module only re-exports memory's
    import memory.settings

    assert Settings is memory.settings.Settings
    assert Settings(chroma_url="http://127.0.0.1:8000").chroma_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("raw", [" abc", "abc ", "abc\n", "\tabc"])
def test_token_with_surrounding_whitespace_is_refused(raw: str) -> None:
    # a header value never carries it, so such a token could never match: refuse at start
    with pytest.raises(ValidationError, match="whitespace"):
        Settings(token=raw)


def test_serve_refuses_a_token_with_whitespace_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [LABSWARM, "serve", "--memory", str(tmp_path / "m"), "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"LABSWARM_EMBEDDER": "hash", "LABSWARM_TOKEN": "tok "},
    )
    assert result.returncode == 1, result.stderr
    assert "whitespace" in result.stderr
    assert not (tmp_path / "m").exists()  # refused before opening anything


def test_read_token_file_drops_only_the_trailing_newline(tmp_path: Path) -> None:
    from agents.cli.serve import read_token_file

    (tmp_path / "t1").write_text("file-token\n")
    assert read_token_file(tmp_path / "t1") == "file-token"
    (tmp_path / "t2").write_text(" spaced\n")
    with pytest.raises(ValidationError, match="whitespace"):  # kept, then refused
        Settings(token=read_token_file(tmp_path / "t2"))
    with pytest.raises(SystemExit, match="no-such-file"):
        read_token_file(tmp_path / "no-such-file")


def run_serve(memory: list[str], port: int, token: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [LABSWARM, "serve", *memory, "--port", str(port)]
        + (token if token is not None else ["--token", "cli-token"]),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"LABSWARM_EMBEDDER": "hash"},
    )


def check_serving(proc: subprocess.Popen, port: int) -> str:
    """Write with the token, read it back, search it; stop the server; return its output."""
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/api/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "labswarm serve did not come up"
                time.sleep(0.2)
        assert health["writes"] == "token"
        # a task of its own: the session's PostgreSQL database and Chroma server are shared
        task = f"cli-{uuid.uuid4().hex[:8]}"
        body = {"task": task, "fingerprint": "f", "status": "keep", "metric": 1.0}
        headers = {"Authorization": "Bearer cli-token"}
        assert httpx.post(f"{url}/api/experiments", json=body, headers=headers).status_code == 201
        assert httpx.get(f"{url}/api/experiments", params={"task": task}).json()["count"] == 1
        # traces only: findings without a task apply to every task, and the session's
        # shared database may hold some from other tests
        params = {"q": "anything", "task": task, "kinds": "trace"}
        hits = httpx.get(f"{url}/api/search", params=params).json()
        assert hits["count"] == 1
        assert httpx.get(f"{url}/").text.startswith("<!doctype html>")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "serving" in out and "writes need the bearer token" in out
    return out


def test_serve_command_serves_and_writes_with_token(tmp_path: Path) -> None:
    port = free_port()
    out = check_serving(run_serve(["--memory", str(tmp_path / "m")], port), port)
    assert str(tmp_path / "m") in out
    assert "--token is visible" in out  # the warning: the token shows in `ps`
    assert "Uvicorn running on" in out  # uvicorn logs at the default level, info


def test_serve_command_reads_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("cli-token\n")  # as `echo cli-token > token` writes it
    port = free_port()
    proc = run_serve(
        ["--memory", str(tmp_path / "m"), "--log-level", "warning"],
        port,
        ["--token-file", str(token_file)],
    )
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    out = check_serving(proc, port)
    assert b"cli-token" not in cmdline  # not in the process list
    assert "--token is visible" not in out
    # --log-level reaches uvicorn: at "warning" its "Uvicorn running on" info line is gone
    assert "Uvicorn running on" not in out


@pytest.mark.postgres
def test_serve_command_on_postgres_and_a_chroma_server(services: Services) -> None:
    port = free_port()
    memory = ["--memory", services.postgres_url(), "--chroma", services.chroma_url()]
    out = check_serving(run_serve(memory, port), port)
    assert "127.0.0.1:5432" in out


LAZY_CHECK = textwrap.dedent(
    """
    import sys, threading
    import httpx
    from memory import get_store
    from memory.models import ExperimentCreate
    from tests.server.http_backend import serve_store
    HEAVY = ("torch", "sentence_transformers", "chromadb", "transformers")
    store = get_store(sys.argv[1], embedder="hash")
    for _ in range(2):  # two kept baseline replicates: a champion
        store.add_trace(ExperimentCreate(task="t", fingerprint="f", status="keep", metric=1.0,
                                         role="baseline"))
    before = {m for m in HEAVY if m in sys.modules}
    with serve_store(store) as url:
        for path in ("/api/health", "/api/experiments", "/api/stats", "/api/claims",
                     "/api/agents", "/api/swarms", "/api/findings", "/api/tasks",
                     "/api/champion?task=t", "/api/noise?task=t", "/api/progress?task=t",
                     "/api/program-stats?task=t&fingerprint=f",
                     "/"):
            assert httpx.get(url + path).status_code == 200, path
        first = httpx.get(url + "/api/experiments").json()["data"][0]["id"]
        assert httpx.get(url + "/api/experiments/" + first + "/lineage").status_code == 200
    after = {m for m in HEAVY if m in sys.modules}
    print("NEW:" + ",".join(sorted(after - before)))
    """
)


def test_non_search_routes_import_no_heavy_library(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LAZY_CHECK, str(tmp_path / "m")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "NEW:"


def test_server_app_import_is_light() -> None:
    code = (
        "import sys; import server.app, memory._http;"
        "print(','.join(m for m in ('torch','sentence_transformers','chromadb')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
