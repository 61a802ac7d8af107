"""Ray, optional: importing it, joining or starting a cluster, and what the cluster holds.

``--ray auto`` joins the running cluster (``ray start --head`` on this machine, or
``RAY_ADDRESS``); ``--ray local`` starts a private one-machine cluster bound to
127.0.0.1 (no dashboard); any other value is a cluster address (``host:6379`` or
``ray://host:10001``). Ray's usage statistics are off unless the operator turned them on.

Binding ``local`` to loopback: Ray resolves 127.0.0.1 to the machine's outward address
on Linux unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's own switch for a cluster
that never leaves one machine), so ``local`` sets it for this process and the Ray
processes it starts.

The driver joins Ray from a working directory of its own (the swarm's directory): Ray
puts the driver's working directory first on every worker's ``sys.path``, so a directory
where ``labswarm run`` was started that holds a ``memory/``, ``agents/`` or ``server/``
folder (or any module named like a library the agents import) would replace labswarm's own
package inside the actors.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'labswarm[ray]'"


class ClusterError(RuntimeError):
    """The cluster cannot be used as asked (the message says why)."""


LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def ray_environment(address: str | None = None) -> None:
    """Ray's own variables for this process (not labswarm settings): usage statistics off
    unless set; for ``local``, every Ray address on loopback."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "local":
        os.environ[LOOPBACK_SWITCH] = "0"
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None:  # Ray read it at import: tell the loaded module too
            constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def require_ray(address: str | None = None) -> ModuleType:
    """The ``ray`` module, or a :class:`ClusterError` naming the extra to install."""
    ray_environment(address)
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"--ray needs Ray, an optional extra of labswarm: {INSTALL_HINT}"
        ) from None
    return ray


@contextmanager
def working_directory(path: Path | None) -> Iterator[None]:
    """Run the block in ``path`` (None: where the process is), then return."""
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def connect(address: str, workdir: Path | None = None) -> bool:
    """Connect this process to a cluster; True if it connected here (and must
    ``ray.shutdown()`` at the end), False if it was connected already.

    ``workdir``: the directory Ray records as the driver's (see the module docstring);
    the process is back in its own directory when this returns."""
    ray = require_ray(address)
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        with working_directory(workdir):
            if address == "local":
                ray.init(
                    address="local",
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **kwargs,
                )
            else:
                ray.init(address=None if address == "auto" else address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"--ray {address}: cannot connect: {exc}") from None
    return True


def capacity(gpu: bool, cpus_per_agent: int) -> int:
    """How many agents the cluster holds: its GPUs, or its CPUs in shares."""
    ray = require_ray()
    resources = ray.cluster_resources()
    if gpu:
        return int(resources.get("GPU", 0))
    return int(resources.get("CPU", 0) // max(1, cpus_per_agent))


def cluster_gpus() -> int:
    return int(require_ray().cluster_resources().get("GPU", 0))


def all_loopback() -> bool:
    """True if every node of the cluster sits on this machine's loopback address."""
    from memory.settings import is_loopback

    nodes = [n for n in require_ray().nodes() if n.get("Alive")]
    return all(is_loopback(str(n.get("NodeManagerAddress", ""))) for n in nodes)


def driver_address() -> str:
    """This process's address as the other nodes see it."""
    return str(require_ray().util.get_node_ip_address())
