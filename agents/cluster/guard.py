"""A guard process beside each cluster agent: when the agent's process dies, however it
dies (its node is removed, Ray kills it, the driver stops), the guard kills the process
group of the run it left in flight.

Runs start in their own session (:mod:`agents.runner`), so they outlive the Ray worker
that started them; the worker cannot clean up after a SIGKILL. The guard is a separate
small process (standard library only, started with ``start_new_session``) that polls the
agent's pid and, once it is gone, reads the workspace's pid file and SIGKILLs that group
if its working directory is still inside the workspace (pids get reused).

    python -m agents.cluster.guard AGENT_PID WORKSPACE
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.2
PIDFILE = ".labswarm-run.json"  # agents.workspace.PIDFILE (not imported: stdlib only here)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie is dead: it only waits for its parent
        try:
            text = stat.read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        state = text[text.rfind(")") + 2 :].split()[:1]
        return state not in (["Z"], ["X"])
    return True


def kill_left_run(workspace: Path) -> bool:
    """SIGKILL the group named by ``workspace``'s pid file if it still works there."""
    pidfile = workspace / PIDFILE
    try:
        pgid = int(json.loads(pidfile.read_text(encoding="utf-8"))["pgid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        cwd = Path(os.readlink(f"/proc/{pgid}/cwd"))
        root = workspace.resolve()
        if cwd != root and root not in cwd.parents:
            return False
    except FileNotFoundError:  # the group leader is gone; members may remain
        pass
    except OSError:  # no /proc: trust the pid file
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def start_guard(agent_pid: int, workspace: Path) -> subprocess.Popen[bytes]:
    """Start the guard of ``agent_pid`` over ``workspace`` (own session, no output)."""
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cluster.guard", str(agent_pid), str(workspace)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def main(argv: list[str]) -> int:
    agent_pid, workspace = int(argv[0]), Path(argv[1])
    while _alive(agent_pid):
        time.sleep(POLL_S)
    kill_left_run(workspace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
