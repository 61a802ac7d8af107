"""Runtime context of an agent's graph: the parts nodes use but never checkpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.devices import Device
from agents.execute import Bench
from agents.idea import DEFAULT_NEAR_DUPLICATE, DEFAULT_NEAR_DUPLICATE_TRIES
from agents.judge import Rules
from agents.library import ProgramLibrary
from agents.proposers.base import Proposer
from agents.task import Task
from agents.tracing import Author
from memory.base import Store

DEFAULT_MAX_REFUSALS = 8  # proposals refused in a row before an agent gives up


@dataclass
class AgentContext:
    """One agent's runtime: memory, proposer, where it runs, its limits and stop signal."""

    store: Store
    proposer: Proposer
    bench: Bench  # task, workspace, device, budget, logs, stop signal
    library: ProgramLibrary  # programs this swarm may run
    swarm_id: str
    agent_name: str
    noise: float  # the swarm's noise sd when it started (each recall re-reads memory's)
    rules: Rules = field(default_factory=Rules)
    # multi-fidelity: each new program runs at this budget first, and at the full budget only
    # when promoted (agents.judge.judge_short); None: every run at the full budget
    short_budget: float | None = None
    max_experiments: int | None = None
    deadline: float | None = None  # time.time() after which no new run starts
    max_refusals: int = DEFAULT_MAX_REFUSALS
    recall: bool = True  # False: recall only this agent's own traces (no shared recall)
    # Ablation switches (each turns off exactly one thing; docs/agents.md):
    semantic_recall: bool = True  # False: no search by meaning (base's nor draft's)
    refuse_near_duplicates: bool = True  # False: drafts are never refused as near duplicates
    near_duplicate_threshold: float = DEFAULT_NEAR_DUPLICATE  # search score that counts
    near_duplicate_tries: int = DEFAULT_NEAR_DUPLICATE_TRIES  # refusals before a draft passes
    insights: bool = True  # False: no insights in the proposer's request
    follow_champion: bool = True  # False: an agent never moves onto the champion
    on_event: Callable[[str, str, dict[str, Any]], None] | None = None

    @property
    def agent_id(self) -> str:
        return f"{self.swarm_id}/{self.agent_name}"

    @property
    def task(self) -> Task:
        return self.bench.task

    @property
    def device(self) -> Device:
        return self.bench.device

    @property
    def budget(self) -> float:
        return self.bench.budget

    @property
    def stop(self) -> threading.Event:
        return self.bench.stop

    @property
    def timeout(self) -> float:
        return self.task.hard_timeout(self.budget)

    @property
    def author(self) -> Author:
        """Who this agent's traces are written by."""
        return Author(self.task, self.swarm_id, self.agent_id, self.device, self.budget)

    def emit(self, event: str, **data: Any) -> None:
        """Tell the live view (if any) what this agent is doing."""
        if self.on_event is not None:
            self.on_event(self.agent_name, event, data)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline
