"""Runtime context of an agent's graph: the parts nodes use but never checkpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.devices import Device
from agents.library import ProgramLibrary
from agents.proposers.base import Proposer
from agents.task import Task
from agents.workspace import Workspace
from memory.base import Store


@dataclass
class AgentContext:
    """One agent's runtime: memory, proposer, device, workspace, limits and stop signal."""

    task: Task
    store: Store
    proposer: Proposer
    workspace: Workspace
    device: Device
    library: ProgramLibrary
    swarm_id: str
    agent_name: str
    budget: float
    noise: float
    logs_dir: Path
    stop: threading.Event = field(default_factory=threading.Event)
    max_experiments: int | None = None
    deadline: float | None = None  # time.time() after which no new run starts
    max_refusals: int = 8  # proposals refused in a row before the agent gives up
    python: str | None = None  # interpreter for "{python}" (default: this one)
    recall: bool = True  # False: recall only this agent's own traces (no shared recall)
    on_event: Callable[[str, str, dict[str, Any]], None] | None = None

    @property
    def agent_id(self) -> str:
        return f"{self.swarm_id}/{self.agent_name}"

    @property
    def timeout(self) -> float:
        return self.task.hard_timeout(self.budget)

    def emit(self, event: str, **data: Any) -> None:
        """Tell the live view (if any) what this agent is doing."""
        if self.on_event is not None:
            self.on_event(self.agent_name, event, data)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline
