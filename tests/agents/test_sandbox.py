"""What a run can reach: the bubblewrap sandbox (only the workspace writable, no network),
the allow-listed environment, redaction of secrets and paths, and the task root's hashes.

bubblewrap works on this project's machines (the Makefile installs it); the sandboxed
tests are skipped, with the reason, where it cannot create namespaces.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents import sandbox
from agents.devices import cpu_devices
from agents.runner import run_env, run_program
from agents.task import load_task
from agents.workspace import TaskRootChanged, Workspace, check_task_root, protected_hashes
from memory.settings import Settings
from tests.agents.conftest import make_task

DEV = cpu_devices(1, threads=1)[0]
needs_bwrap = pytest.mark.skipif(bool(sandbox.probe()), reason=sandbox.probe() or "")


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A task root outside pytest's tmp_path, like a real checkout (the workspace is
    tmp_path, the one writable place)."""
    path = Path(tempfile.mkdtemp(prefix="labswarm-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port that accepts connections (outside a sandbox)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


ESCAPE = """\
import os, socket, sys
def attempt(what, fn):
    try:
        fn()
        print(what, "SUCCEEDED")
    except OSError as exc:
        print(what, "refused:", exc)
attempt("task root", lambda: open({task_file!r}, "a").write("# tampered\\n"))
attempt("home", lambda: open(os.path.expanduser({home_file!r}), "w").write("x"))
attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3))
open("inside.txt", "w").write("the workspace is writable")
attempt("/tmp", lambda: open({tmp_file!r}, "w").write("x"))
import tempfile
with tempfile.NamedTemporaryFile(dir=None) as fh:
    print("TMPDIR file in the workspace:", fh.name.startswith(os.getcwd()))
print("---")
print("val_loss: 1.0")
"""


@needs_bwrap
def test_a_sandboxed_run_writes_only_its_workspace_and_has_no_network(
    outside_tmp, listening_port, tmp_path
):
    root = make_task(outside_tmp / "task")
    home_file = f"~/labswarm-sandbox-probe-{outside_tmp.name}"
    tmp_file = f"/tmp/labswarm-sandbox-probe-{outside_tmp.name}"
    escape = ESCAPE.format(
        task_file=str(root / "prepare.py"),
        home_file=home_file,
        port=listening_port,
        tmp_file=tmp_file,
    )
    (root / "train.py").write_text(escape)
    task = load_task(root)
    ws = Workspace(task, tmp_path / "work")
    log = tmp_path / "run.log"
    r = run_program(task, ws.path, DEV, 1, log, sandbox="require")
    text = log.read_text()
    assert r.status == "ok", r.error
    assert "task root refused: [Errno 30] Read-only file system" in text
    assert "home refused: [Errno" in text  # read-only (or hidden, were $HOME under /tmp)
    assert "network refused" in text and "SUCCEEDED" not in text
    assert (root / "prepare.py").read_text() == "VALUE = 1\n", "the original is unchanged"
    assert not Path(home_file).expanduser().exists()
    assert (ws.path / "inside.txt").is_file()
    assert "/tmp refused: [Errno 30] Read-only file system" in text
    assert not Path(tmp_file).exists()
    assert "TMPDIR file in the workspace: True" in text, "temporary files go to the workspace"

    # the control: the same program unsandboxed reaches the network (so the test can fail)
    (root / "train.py").write_text(escape.replace(repr(str(root / "prepare.py")), "'x.txt'"))
    r = run_program(load_task(root), ws.path, DEV, 1, tmp_path / "off.log", sandbox="off")
    try:
        assert "network SUCCEEDED" in (tmp_path / "off.log").read_text()
    finally:  # the unsandboxed control really wrote these
        Path(home_file).expanduser().unlink(missing_ok=True)
        Path(tmp_file).unlink(missing_ok=True)


@needs_bwrap
def test_a_task_may_ask_for_the_network(outside_tmp, listening_port, tmp_path):
    root = make_task(
        outside_tmp / "task",
        f"import socket\nsocket.create_connection(('127.0.0.1', {listening_port}), timeout=3)\n"
        "print('---')\nprint('val_loss: 1')\n",
        extra="[sandbox]\nnetwork = true\n",
    )
    task = load_task(root)
    assert task.network
    r = run_program(task, root, DEV, 1, tmp_path / "run.log", sandbox="require")
    assert r.status == "ok", r.log_tail


@needs_bwrap
def test_the_trainer_trains_inside_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.delenv("LABSWARM_CACHE_DIR", raising=False)
    task = load_task(None)
    ws = Workspace(task, tmp_path / "work")
    r = run_program(task, ws.path, DEV, 2, tmp_path / "train.log", sandbox="require")
    assert r.status == "ok", r.log_tail
    assert r.metric is not None and 0 < r.metric < 9  # bits per byte; uniform guessing is 8
    assert r.summary["device"] == "cpu"
    assert ws.tampered() == []


def test_without_bwrap_auto_warns_once_and_require_refuses(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    monkeypatch.setattr(sandbox, "_warned", False)
    sandbox.probe.cache_clear()
    try:
        assert "not installed" in sandbox.probe()
        with pytest.raises(sandbox.SandboxError, match="apt-get install bubblewrap"):
            sandbox.sandbox_enabled("require")
        with caplog.at_level(logging.WARNING, logger="agents.sandbox"):
            assert sandbox.sandbox_enabled("auto") is False
            assert sandbox.sandbox_enabled("auto") is False
        warnings = [r for r in caplog.records if "NOT sandboxed" in r.getMessage()]
        assert len(warnings) == 1 and "apt-get install bubblewrap" in warnings[0].getMessage()
        assert sandbox.sandbox_enabled("off") is False
    finally:
        sandbox.probe.cache_clear()


def test_the_sandbox_setting(monkeypatch):
    monkeypatch.setenv("LABSWARM_SANDBOX", "off")
    assert Settings().sandbox == "off"
    monkeypatch.setenv("LABSWARM_SANDBOX", "sometimes")
    with pytest.raises(ValueError, match="sandbox"):
        Settings()
    monkeypatch.delenv("LABSWARM_SANDBOX")
    assert Settings().sandbox == "auto"


def test_gpu_runs_keep_the_real_dev():
    cmd = sandbox.wrap(["python"], Path("/w"), gpu=True, network=False)
    assert cmd[cmd.index("--dev-bind") + 1 : cmd.index("--dev-bind") + 3] == ["/dev", "/dev"]
    cmd = sandbox.wrap(["python"], Path("/w"), gpu=False, network=True)
    assert "--dev-bind" not in cmd and "--unshare-net" not in cmd
    i = cmd.index("--bind")
    assert cmd[-2:] == ["--", "python"] and cmd[i : i + 3] == ["--bind", "/w", "/w"]


# ---------------------------------------------------------------------------
# The run environment and redaction
# ---------------------------------------------------------------------------

SECRETS = {
    "LABSWARM_TOKEN": "tok-SECRET-should-not-leak",
    "OPENAI_API_KEY": "sk-fake-SECRET-0001",
    "DB_PASSWORD": "hunter22-pass",
    "GITHUB_TOKEN": "ghp_fakefakefake",
}


def test_the_run_environment_is_allow_listed(tmp_path):
    root = make_task(tmp_path / "t", extra='[env]\nMY_FLAG = true\nLANG = "C.UTF-8"\n')
    task = load_task(root)
    parent = {
        **SECRETS,
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LC_ALL": "C",
        "TZ": "UTC",
        "PYTHONPATH": "/x",
        "SSH_AUTH_SOCK": "/run/agent",
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "LABSWARM_MEMORY": "postgresql://u:p@db/x",
        "LABSWARM_CORPUS": "/data/c",
    }
    env = run_env(task, DEV, 5, environ=parent)
    assert not set(SECRETS) & set(env)
    assert "SSH_AUTH_SOCK" not in env and "LABSWARM_MEMORY" not in env
    assert "AWS_ACCESS_KEY_ID" not in env
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u" and env["LC_ALL"] == "C"
    assert env["PYTHONPATH"] == "/x" and env["TZ"] == "UTC"
    assert env["LABSWARM_CORPUS"] == "/data/c"
    assert env["MY_FLAG"] == "true" and env["LANG"] == "C.UTF-8"
    assert env["LABSWARM_TIME_BUDGET"] == "5" and env["CUDA_VISIBLE_DEVICES"] == ""
    sandboxed = run_env(task, DEV, 5, sandbox_dir=tmp_path / "w", environ=parent)
    assert sandboxed["XDG_CACHE_HOME"].startswith(str((tmp_path / "w").resolve()))


LEAK = """\
import os, sys
print("env has:", sorted(k for k in os.environ if "SECRET" in k or k.endswith(("_TOKEN", "_KEY"))))
print("my key is sk-fake-SECRET-0001 and the token tok-SECRET-should-not-leak")
print("working in", os.getcwd(), "home", os.path.expanduser("~/x"))
print("---")
print("leak: hunter22-pass")
print("val_loss: 1.5")
sys.exit("fatal: ghp_fakefakefake rejected in " + os.getcwd())
"""


def test_secrets_and_paths_never_come_back_from_a_run(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    task = load_task(make_task(tmp_path / "t", LEAK))
    ws = Workspace(task, tmp_path / "work")
    log = tmp_path / "logs" / "run.log"
    r = run_program(task, ws.path, DEV, 1, log)
    assert r.status == "crash"
    assert "env has: []" in r.log_tail, "no secret variable reaches the run"
    returned = r.log_tail + r.error + str(r.summary)
    for value in SECRETS.values():
        assert value not in returned
    assert "[redacted:OPENAI_API_KEY]" in r.log_tail
    assert "[redacted:LABSWARM_TOKEN]" in r.log_tail
    assert r.summary["leak"] == "[redacted:DB_PASSWORD]"
    assert "[redacted:GITHUB_TOKEN]" in r.error and "<workspace>" in r.error
    assert str(ws.path) not in returned and str(Path.home()) + "/" not in returned
    assert "working in <workspace> home ~/x" in r.log_tail
    stored = r.stored_resources(tmp_path)
    assert stored["log"] == "logs/run.log" and stored["returncode"] == 1
    assert r.stored_resources()["log"] == "run.log"
    assert "/" + "tmp" not in str(stored)


# ---------------------------------------------------------------------------
# The task root's protected files, hashed once per swarm
# ---------------------------------------------------------------------------


def test_the_task_root_is_checked_against_the_recorded_hashes(tmp_path):
    root = make_task(tmp_path / "task")
    task = load_task(root)
    expected = protected_hashes(task)
    assert set(expected) == {"prepare.py", "task.toml", "data/corpus.txt"}
    assert check_task_root(task, expected) == []

    ws = Workspace(task, tmp_path / "work", expected)
    (root / "prepare.py").write_text("VALUE = 2  # tampered in the ORIGINAL task\n")
    (root / "data" / "extra.txt").write_text("planted")
    assert check_task_root(task, expected) == ["data/extra.txt", "prepare.py"]
    # the workspace still restores from the recorded state, never from the tampered root
    assert ws.tampered() == []
    (ws.path / "prepare.py").write_text("VALUE = 3\n")
    with pytest.raises(TaskRootChanged, match="prepare.py"):
        ws.restore_protected()
    assert "tampered" not in (ws.path / "prepare.py").read_text()
    # a workspace built now from the tampered root is refused too
    with pytest.raises(TaskRootChanged):
        Workspace(task, tmp_path / "work2", expected)
    # without recorded hashes (None), the root as it is now is the reference
    assert Workspace(task, tmp_path / "work3").tampered() == []
