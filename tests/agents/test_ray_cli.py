"""``labswarm run --ray local`` through the real CLI: a private Ray cluster on this
machine, started and shut down by the driver process itself.

The driver runs as a subprocess on the landscape task (runs take milliseconds; the budget
is the task's own). Every process it starts is found again by its environment: the test
gives the driver a fresh ``RAY_TMPDIR`` that Ray's processes (head, raylet, workers, the
agents' guards) inherit; the runs get an allow-listed environment instead, so they are
found by their working directory, which lies under ``--ray-workdir``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agents.judge import DEFAULT_REPLICATES
from memory import get_store
from memory.models import Role, TraceQuery
from tests.agents.test_ray import _processes_under, check_count, check_runs

REPO = Path(__file__).resolve().parents[2]
LANDSCAPE = REPO / "benchmarks" / "landscape"
LABSWARM = Path(sys.executable).with_name("labswarm")
AGENTS = 2
EXPERIMENTS = 2  # per agent, confirmations and re-measures included
LISTEN = "0A"  # a LISTEN socket's state in /proc/net/tcp


def _marked(marker: str) -> dict[int, str]:
    """Running processes whose environment holds ``marker``: pid -> command."""
    found: dict[int, str] = {}
    needle = marker.encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle not in (proc / "environ").read_bytes():
                continue
            stat = (proc / "stat").read_text(errors="replace")
            if stat[stat.rfind(")") + 2 :].split()[:1] in (["Z"], ["X"]):
                continue  # a zombie only waits for its parent to read its status
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(proc.name)] = cmd.strip()
    return found


def _address(hexed: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A /proc/net/tcp{,6} local address (host-order 32-bit words in hex)."""
    raw = bytes.fromhex(hexed)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return ipaddress.IPv6Address(words)


def _loopback(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return addr.is_loopback or (mapped is not None and mapped.is_loopback)


def _listening(pids: dict[int, str]) -> set[tuple[str, str]]:
    """(address, command) of every TCP socket these processes listen on."""
    sockets: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN:
                sockets[fields[9]] = fields[1]
    found = set()
    for pid, cmd in pids.items():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            local = (
                sockets.get(target[len("socket:[") : -1]) if target.startswith("socket:[") else None
            )
            if local is not None:
                host, port = local.split(":")
                found.add((f"{_address(host)}:{int(port, 16)}", cmd[:80]))
    return found


def test_labswarm_run_ray_local_runs_the_landscape_on_a_private_loopback_cluster(
    tmp_path: Path,
) -> None:
    # short: Ray's socket paths under it must fit in 107 bytes
    ray_tmp = Path(tempfile.mkdtemp(prefix="lsray-", dir="/tmp"))
    # started where folders are named like labswarm's packages: Ray puts the driver's
    # directory first on its workers' sys.path, so the actors must not import from there
    where = tmp_path / "project"
    for package in ("agents", "memory"):
        (where / package).mkdir(parents=True)
        (where / package / "__init__.py").write_text(f"raise ImportError('{where} shadowed')\n")
    memory = tmp_path / "memory"
    nodes = where / "nodes"  # given relative: to the driver's directory, not the workers'
    argv = [str(LABSWARM), "run", "--ray", "local", "--task", str(LANDSCAPE)]
    argv += ["--agents", str(AGENTS), "--devices", "cpu", "--max-experiments", str(EXPERIMENTS)]
    argv += ["--memory", str(memory), "--ray-workdir", "nodes"]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--no-live"]
    # runs at two budgets (multi-fidelity) through the actors: 1.5 s first, then the 3 s
    argv += ["--short-budget", "1.5"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "LABSWARM_EMBEDDER": "hash"}
    env["RAY_TMPDIR"] = str(ray_tmp)
    env.pop("RAY_ADDRESS", None)  # never join a cluster someone else started
    log_path = tmp_path / "driver.log"
    seen: dict[int, str] = {}
    listeners: set[tuple[str, str]] = set()
    started = time.monotonic()
    with log_path.open("wb") as log:
        driver = subprocess.Popen(
            argv,
            cwd=where,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while driver.poll() is None:
            assert time.monotonic() - started < 240, "the swarm did not finish in 240 s"
            now = _marked(str(ray_tmp))
            seen.update(now)
            listeners |= _listening(now)
            time.sleep(0.5)
        took = time.monotonic() - started
        output = log_path.read_text(errors="replace")
        assert driver.returncode == 0, output[-4000:]

        # Ray's processes and the runs end with the driver (a moment for the last exits)
        left: dict[int, str] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = _marked(str(ray_tmp))
            left.update({pid: "a run" for pid in _processes_under(nodes.resolve())})
            if not left:
                break
            time.sleep(0.2)
        assert left == {}, f"left behind after the driver exited: {left}"
        assert any("raylet" in cmd for cmd in seen.values()), f"no Ray node seen: {seen}"
        assert any("AgentWorker" in cmd for cmd in seen.values()), "no agent actor seen"
        assert listeners, "no Ray process was seen listening"
        exposed = [
            x for x in listeners if not _loopback(ipaddress.ip_address(x[0].rsplit(":", 1)[0]))
        ]
        assert exposed == [], f"listening beyond loopback: {exposed}"
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
        for pid in _marked(str(ray_tmp)):  # what the driver started and left: never others'
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)

    store = get_store(memory, embedder="hash")
    try:
        (swarm,) = store.list_swarms("trainer-landscape")
        assert swarm.status == "finished" and swarm.config["ray"] == "local"
        traces = store.query_traces(TraceQuery(swarm_id=swarm.id, limit=1000)).data
        ids = [str(t.id) for t in traces]
        # every run on the nodes left one log, named by its trace: each arrived, once
        logs = sorted(p.stem.removeprefix("baseline-") for p in nodes.rglob("logs/*.log"))
        assert logs == sorted(ids), "a run's trace is missing, or a trace has no run"

        baselines = [t for t in traces if t.role == Role.baseline]
        assert len(baselines) == DEFAULT_REPLICATES
        ran = check_runs(traces, baselines[0].fingerprint)
        rows = {a.name: a for a in store.list_agents(swarm.id)}
        assert sorted(rows) == [f"agent-{i}" for i in range(AGENTS)]
        for name, row in rows.items():
            mine = [t for t in ran if t.agent_id == f"{swarm.id}/{name}"]
            assert row.status == "stopped" and row.experiments == len(mine)
            check_count(len(mine), EXPERIMENTS, short=True)
            assert row.device.startswith("127.0.0.1#"), f"{name} on {row.device}"
        assert store.active_claims("trainer-landscape") == [], "a claim was left behind"
        # every agent screened its programs at 1.5 s; every full run names its short run
        shorts = {t.id: t for t in ran if t.role == Role.short}
        assert {t.agent_id for t in shorts.values()} == {f"{swarm.id}/{n}" for n in rows}
        assert all(t.budget_s == 1.5 for t in shorts.values()) and swarm.config["short_budget"]
        for t in ran:
            if t.role == Role.experiment:
                assert t.budget_s == 3.0 and shorts[t.short_id].fingerprint == t.fingerprint
    finally:
        store.close()
    print(f"labswarm run --ray local: {took:.1f} s")
