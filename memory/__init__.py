"""labswarm's shared memory: traces, claims and findings.

SQL (SQLModel) is the truth, Chroma is the vector index, MiniLM makes embeddings.
``get_store(None | path | URL | store)`` resolves a backend; ``None`` is
``$LABSWARM_MEMORY`` if set, else the embedded default in ``./.labswarm`` (or
``$LABSWARM_HOME``); see ``memory.resolve`` for the forms and ``memory.settings`` for the
variables.
"""

from memory.base import Store
from memory.embed import Embedder, get_embedder
from memory.errors import (
    AlreadyClaimed,
    AlreadyRan,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    LimitExceeded,
    MemoryError_,
    NotFound,
    StoreInUse,
)
from memory.models import (
    MIN_CHAMPION_RUNS,
    RAN_STATUSES,
    SEEN_STATUSES,
    AgentCreate,
    AgentPublic,
    ClaimCreate,
    ClaimPublic,
    ExperimentCreate,
    ExperimentPublic,
    FindingCreate,
    FindingPublic,
    ImportResult,
    Lineage,
    NoiseEstimate,
    Page,
    Role,
    RunStats,
    SearchHit,
    Stats,
    Status,
    SwarmCreate,
    SwarmPublic,
    TraceQuery,
)
from memory.resolve import get_store

__all__ = [
    "MIN_CHAMPION_RUNS",
    "RAN_STATUSES",
    "SEEN_STATUSES",
    "AgentCreate",
    "AgentPublic",
    "AlreadyClaimed",
    "AlreadyRan",
    "BackendUnavailable",
    "ClaimCreate",
    "ClaimPublic",
    "Conflict",
    "Embedder",
    "ExperimentCreate",
    "ExperimentPublic",
    "FindingCreate",
    "FindingPublic",
    "ImportResult",
    "InvalidInput",
    "LimitExceeded",
    "Lineage",
    "MemoryError_",
    "NoiseEstimate",
    "NotFound",
    "Page",
    "Role",
    "RunStats",
    "SearchHit",
    "Stats",
    "Status",
    "Store",
    "StoreInUse",
    "SwarmCreate",
    "SwarmPublic",
    "TraceQuery",
    "get_embedder",
    "get_store",
]
