"""Response and request shapes of the HTTP API that are not memory entities."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from memory.models import Direction, ExperimentCreate, FindingCreate, Status


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    store: str  # backend class name
    writes: Literal["token", "open", "disabled"]


class ProgressPoint(BaseModel):
    """One run on the progress chart (chronological)."""

    id: str
    index: int  # position in the chronological run order, from 0
    created_at: datetime
    status: Status
    # drawn as kept (``memory.models.charted_keeps``): a verdict's keep, a start's
    # replicate, or the crowning run of a champion the finals chose; not any other
    # re-measure or confirmation recorded keep when it ran
    kept: bool
    metric: float | None
    best: float | None  # running best among kept runs so far
    is_best: bool  # this keep set a new running best
    # the chart labels it: a new running best of a program no earlier label named (the
    # start's replicates are one program: the second setting a new best gets no label)
    labelled: bool = False
    label: str = ""  # the text of its label (``memory.models.chart_label``), when labelled
    hypothesis: str
    agent_id: str | None


class ProgressPage(BaseModel):
    data: list[ProgressPoint]
    count: int
    task: str
    metric_name: str
    direction: Direction
    truncated: bool = False  # more runs exist than the chart was given
    # of the points, the changes a verdict kept (``memory.models.kept_change``): the chart's
    # title counts these, not its green points, which include the start's replicates
    kept_changes: int = 0


class TaskList(BaseModel):
    data: list[str]
    count: int


class ImportRequest(BaseModel):
    """Records to import in one all-or-nothing transaction (ids already present skip)."""

    traces: list[ExperimentCreate] = Field(default_factory=list)
    findings: list[FindingCreate] = Field(default_factory=list)


class ReindexResult(BaseModel):
    indexed: int


class IndexCount(BaseModel):
    count: int
