"""``labswarm run --ray ADDRESS``: the run command's cluster options and the cluster swarm
they build (agents/cluster/, docs/cluster.md).

    labswarm run --ray auto --hours 8                    # join the running Ray cluster
    labswarm run --ray local --agents 4 --devices cpu    # a private cluster on this machine
    labswarm run --ray auto --memory postgresql://u@db/labswarm?chroma=http://db:8000

Without ``--memory`` (or with a directory), the embedded memory stays on this machine and
is served to the agents over HTTP with a token generated for the swarm.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.cluster import ClusterSwarm
    from agents.swarm import SwarmConfig
    from memory.base import Store
    from memory.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster options of ``labswarm run``."""
    group = parser.add_argument_group("cluster (Ray; pip install 'labswarm[ray]')")
    group.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the agents as Ray actors, one GPU (or --devices cpu:N share) each: 'auto' "
        "joins the running cluster, 'local' starts a private one on 127.0.0.1, else a "
        "cluster address (host:6379, ray://host:10001); --agents defaults to its GPUs",
    )
    group.add_argument(
        "--ray-workdir",
        metavar="DIR",
        help="where agents keep their task copy, workspace and logs on each node, the same "
        "path on every node (relative: to this directory; default: each node's temporary "
        "directory)",
    )
    group.add_argument(
        "--ray-restarts",
        type=int,
        default=3,
        metavar="N",
        help="times Ray restarts an agent whose process or node died (default 3)",
    )


def make_swarm(
    args: argparse.Namespace, config: SwarmConfig, store: Store, settings: Settings
) -> ClusterSwarm:
    """The cluster swarm ``args`` ask for (Ray itself is imported when it runs)."""
    from agents.cli.cluster_memory import serve_memory
    from agents.cluster import ClusterConfig, ClusterError, ClusterSwarm, memory_access
    from agents.cluster.connect import require_ray
    from agents.cluster.options import share
    from agents.swarm import SwarmError

    try:
        require_ray(args.ray)  # a missing extra fails here, before anything starts
    except ClusterError as exc:
        raise ImportError(str(exc)) from None  # the CLI prints it as an error, exit 1
    try:
        share(config.devices)
    except SwarmError as exc:
        args.parser.error(str(exc))
    # a relative directory means this one's, not the one each Ray worker happens to be in
    node_dir = str(Path(args.ray_workdir).expanduser().absolute()) if args.ray_workdir else None
    cluster = ClusterConfig(
        address=args.ray, node_dir=node_dir, max_restarts=max(0, args.ray_restarts)
    )
    target = args.memory or settings.memory
    return ClusterSwarm(
        config,
        cluster,
        store,
        memory=memory_access(target, settings),
        serve=serve_memory,
        resume=args.resume,
    )


def describe(swarm: Any) -> str:
    """One line on where the agents' memory lives (printed at start)."""
    if swarm.memory is not None:
        return f"agents use the memory {swarm.memory.target} directly"
    return "agents use this machine's memory, served over HTTP with a generated token"
