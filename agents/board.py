"""Live state of each agent for the terminal view, fed by the agents' events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class AgentBoard:
    """Live state of one agent for the terminal view."""

    name: str
    device: str
    status: str = "starting"
    hypothesis: str = ""
    run_started: float | None = None
    experiments: int = 0
    base_metric: float | None = None
    last: str = ""


def apply_event(b: AgentBoard, event: str, data: dict[str, Any]) -> None:
    """Update one agent's board from an event its nodes emitted."""
    if event == "proposing":
        b.status = "proposing"
    elif event == "proposed":
        b.hypothesis = data.get("hypothesis", "")
    elif event == "running":
        b.status = "running"
        b.hypothesis = data.get("hypothesis", b.hypothesis)
        b.run_started = data.get("started")
    elif event == "recall":
        b.status = "recalling"
        b.base_metric = data.get("base_metric")
    elif event == "recorded":
        b.last = data.get("status", "")
        b.run_started = None
        if data.get("ran"):
            b.experiments += 1
        b.status = "idle"
    elif event == "stopped":
        b.status = "stopped: " + data.get("reason", "")
        b.run_started = None
