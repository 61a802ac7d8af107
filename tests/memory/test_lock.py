"""Embedded store, one owner (security review finding 8, 5.6): a second process opening the
same directory is refused with a message naming the owner and the alternative; the lock
goes with its owner (close, or kill -9); inside one process stores and threads share it.

    .venv/bin/pytest tests/memory/test_lock.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory import ExperimentCreate, Status, get_store
from memory._lock import LOCK_FILE
from memory.errors import StoreInUse

REPO = Path(__file__).resolve().parents[2]

OPEN = """
import sys
from memory import get_store
from memory.errors import StoreInUse
try:
    store = get_store(sys.argv[1], embedder="hash")
except StoreInUse as exc:
    print("REFUSED", exc)
    sys.exit(3)
print("OPENED", flush=True)
if len(sys.argv) > 2 and sys.argv[2] == "hold":
    sys.stdin.readline()  # hold the store until the test says so (or kills us)
store.close()
"""


def other_process(mem: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", OPEN, str(mem), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def holder(mem: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OPEN, str(mem), "hold", "--token", "s3cret-value"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the child owns the store
    assert line.startswith("OPENED"), line + (proc.stderr.read() if proc.stderr else "")
    return proc


def test_second_process_is_refused_with_owner_and_alternative(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    with get_store(mem, embedder="hash") as store:
        store.add_trace(ExperimentCreate(task="t", fingerprint="f", status=Status.keep))
        refused = other_process(mem)
        assert refused.returncode == 3, refused.stderr[-2000:]
        message = refused.stdout
        assert f"memory {mem.resolve()} is in use by another process: pid {os.getpid()}" in message
        assert "pytest" in message or "python" in message  # the owner's command line
        assert f"labswarm serve --memory {mem.resolve()}" in message
        assert "--memory http://127.0.0.1:8765" in message
        assert store.count() == 1  # the owner is unaffected
    opened = other_process(mem)  # closed: the next process may own it
    assert opened.returncode == 0 and "OPENED" in opened.stdout, opened.stderr[-2000:]


def test_owner_in_another_process_is_named_and_secrets_hidden(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    proc = holder(mem)
    try:
        with pytest.raises(StoreInUse) as info:
            get_store(mem, embedder="hash")
        message = str(info.value)
        assert f"pid {proc.pid} " in message and "--token ***" in message
        assert "s3cret-value" not in message
        assert "s3cret-value" not in (mem / LOCK_FILE).read_text()
    finally:
        proc.kill()  # kill -9: the kernel drops the lock with the process
        proc.wait()
    with get_store(mem, embedder="hash") as store:  # no stale lock after a crash
        assert store.count() == 0


def test_one_process_may_open_the_directory_many_times(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    first = get_store(mem, embedder="hash")
    second = get_store(mem, embedder="hash")
    try:
        first.add_trace(ExperimentCreate(id="a", task="t", fingerprint="f", status=Status.keep))
        assert second.get_trace("a").id == "a"
        first.close()
        assert other_process(mem).returncode == 3  # still held by `second`
    finally:
        first.close()  # idempotent: must not release `second`'s hold
        assert other_process(mem).returncode == 3
        second.close()
    assert other_process(mem).returncode == 0


def test_a_failed_open_releases_the_lock(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    mem.mkdir()
    (mem / "chroma").write_text("not a directory")  # the index cannot open
    with pytest.raises(OSError):
        get_store(mem, embedder="hash")
    (mem / "chroma").unlink()
    assert other_process(mem).returncode == 0


def test_forked_child_is_another_process(tmp_path: Path) -> None:
    mem = tmp_path / "mem"
    with get_store(mem, embedder="hash"):
        pid = os.fork()
        if pid == 0:  # the child: refused although it inherited the parent's registry
            code = 1
            try:
                get_store(mem, embedder="hash")
            except StoreInUse:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert other_process(mem).returncode == 0
