"""Query and path parameter types shared by the routes.

Every text parameter goes through the memory's own edge rule (``memory.models.text_problem``:
no NUL byte, which PostgreSQL cannot store and a URL can carry as ``%00``, no lone
surrogate), and every datetime through ``time_problem`` (a representable range), so such
input is a 422 naming the parameter before it reaches a store. Numbers are bounded and
finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import AfterValidator

from memory.models import MAX_PAGE, text_problem, time_problem, utc


def clean_text(value: str | None) -> str | None:
    """``value`` if the memory can store it as text, else a ValueError saying why."""
    if value is not None and (problem := text_problem(value)):
        raise ValueError(problem)
    return value


def to_utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (naive: taken as UTC); out of the memory's range: a ValueError."""
    if value is not None and (problem := time_problem(value)):
        raise ValueError(problem)
    return utc(value)


Clean = AfterValidator(clean_text)

Text200 = Annotated[str | None, Query(max_length=200), Clean]
Text100 = Annotated[str | None, Query(max_length=100), Clean]
Id128 = Annotated[str | None, Query(max_length=128), Clean]
Id64 = Annotated[str | None, Query(max_length=64), Clean]
TaskName = Annotated[str, Query(min_length=1, max_length=200), Clean]
FingerprintQuery = Annotated[str, Query(min_length=1, max_length=128), Clean]
Metric = Annotated[float | None, Query(allow_inf_nan=False)]
Budget = Annotated[
    float | None,
    Query(gt=0, le=10**7, allow_inf_nan=False, description="run budget in seconds"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
When = Annotated[datetime | None, AfterValidator(to_utc)]
IdPath = Annotated[str, Path(min_length=1, max_length=64, description="the record's id"), Clean]


@dataclass(frozen=True)
class Where:
    """Which of a task's runs a judging query reads (the champion, the leader, the noise,
    a program's stats): on ``hardware``, with run budget ``budget`` (seconds), from
    ``swarm_id``; ``None`` for any."""

    hardware: str | None
    budget: float | None
    swarm_id: str | None

    def place(self) -> str:
        """`` on hardware 'x' with a budget of 300 s`` (the parts given), for messages."""
        where = f" on hardware {self.hardware!r}" if self.hardware else ""
        within = f" with a budget of {self.budget:g} s" if self.budget is not None else ""
        return where + within


def where(hardware: Text200 = None, budget: Budget = None, swarm_id: Id128 = None) -> Where:
    return Where(hardware, budget, swarm_id)


WhereQuery = Annotated[Where, Depends(where)]
