"""The cluster swarm: agents as Ray actors, one GPU (or CPU share) each, across the nodes
of a Ray cluster, sharing one memory (``labswarm run --ray ADDRESS``; docs/cluster.md).

- :mod:`agents.cluster.connect`: Ray as an optional extra; joining or starting a cluster.
- :mod:`agents.cluster.packing`: the task directory as bytes for the object store.
- :mod:`agents.cluster.actor`: one agent on its node (the same graph as the embedded swarm).
- :mod:`agents.cluster.recover`: an agent picked up from memory after its node died.
- :mod:`agents.cluster.guard`: kills an agent's run when the agent's process dies.
- :mod:`agents.cluster.options`: the cluster settings, the memory access, ``--devices``.
- :mod:`agents.cluster.driver`: places the agents, measures the noise, runs and stops them.

Ray is imported only when a cluster swarm runs.
"""

from agents.cluster.actor import MemoryAccess
from agents.cluster.connect import INSTALL_HINT, ClusterError, require_ray
from agents.cluster.driver import ClusterSwarm
from agents.cluster.options import ClusterConfig, memory_access

__all__ = [
    "INSTALL_HINT",
    "ClusterConfig",
    "ClusterError",
    "ClusterSwarm",
    "MemoryAccess",
    "memory_access",
    "require_ray",
]
