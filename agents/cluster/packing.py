"""The task directory as bytes, so that it travels to every node through Ray's object
store (no shared filesystem assumed), and back into a directory there.

The archive holds what a workspace copy holds (:mod:`agents.workspace` skips the same
directories and compiled files); after unpacking, the protected files must hash as the
driver recorded them, or the agent refuses to run.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

from agents.task import Task, load_task
from agents.workspace import _SKIP_DIRS, protected_hashes

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # larger data belongs on the nodes, named by path


class PackingError(RuntimeError):
    """The task directory cannot be packed, or arrived changed."""


def _keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if any(p in _SKIP_DIRS for p in parts) or info.name.endswith(".pyc"):
        return None
    if not (info.isfile() or info.isdir()):
        return None  # links and devices do not travel (a workspace copy follows no link)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_task(root: Path) -> bytes:
    """``root``'s files as a gzipped tar (paths relative to ``root``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for child in sorted(Path(root).iterdir()):
            tar.add(child, arcname=child.name, filter=_keep)
    data = buf.getvalue()
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PackingError(
            f"task directory {root}: {len(data) / 2**20:.0f} MiB packed, over the "
            f"{MAX_ARCHIVE_BYTES / 2**20:.0f} MiB a cluster swarm sends to its nodes; keep "
            "large data outside the task directory and name it by a path every node has"
        )
    return data


def unpack_task(data: bytes, target: Path, expected: dict[str, str]) -> Task:
    """Write the archive into ``target`` (replacing what is there) and load its task;
    its protected files must hash as ``expected``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
    task = load_task(target)
    got = protected_hashes(task)
    if got != expected:
        changed = sorted(set(got.items()) ^ set(expected.items()))
        names = sorted({rel for rel, _ in changed})
        raise PackingError(f"the task's protected files arrived changed on this node: {names}")
    return task
