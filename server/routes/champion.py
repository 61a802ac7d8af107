"""The champion of a task, its leader, its noise, and the progress chart's data (the running
best)."""

from __future__ import annotations

from fastapi import APIRouter

from memory.errors import NotFound
from memory.models import (
    MAX_PAGE,
    MIN_CHAMPION_RUNS,
    ExperimentPublic,
    NoiseEstimate,
    RunStats,
    TraceQuery,
    chart_label,
    charted_keeps,
    first_of_each_program,
    kept_change,
    running_best,
)
from server.deps import StoreDep
from server.errors import ERROR_RESPONSES
from server.params import FingerprintQuery, Id128, TaskName, Text200, WhereQuery
from server.schemas import ProgressPage, ProgressPoint

router = APIRouter(prefix="/api", tags=["champion"], responses=ERROR_RESPONSES)

PROGRESS_MAX_POINTS = 10_000  # the chart's first runs; later ones are flagged truncated


@router.get("/champion", response_model=ExperimentPublic)
def get_champion(store: StoreDep, task: TaskName, where: WhereQuery) -> ExperimentPublic:
    """The champion of ``task`` (``Store.champion``): among programs kept at least twice
    (one lucky run is never the champion), the one whose MEAN last beat the champion
    before it by the keep rule's margin, on ``hardware``, with run budget ``budget`` (seconds) and
    from ``swarm_id`` when given; never a seed or an imported trace. Answers the oldest
    experiment (or baseline) trace of that program; 404 if no program qualifies."""
    best = store.champion(task, where.hardware, where.budget, swarm_id=where.swarm_id)
    if best is None:
        raise NotFound(
            f"no program of task {task!r}{where.place()} has {MIN_CHAMPION_RUNS} trusted "
            "kept runs with a metric yet"
        )
    return best


@router.get("/leader", response_model=ExperimentPublic)
def get_leader(store: StoreDep, task: TaskName, where: WhereQuery) -> ExperimentPublic:
    """The leading program of ``task`` (``Store.leader``): the best mean over its trusted
    measured runs however few -- one lucky run can lead, so it is not the champion until
    re-tested (a swarm with ``--retest end`` re-tests it after its search) -- on
    ``hardware``, with run budget ``budget`` (seconds) and from ``swarm_id`` when given.
    Answers the oldest experiment (or baseline) trace of that program; 404 while no program
    has a measured run there."""
    best = store.leader(task, where.hardware, where.budget, swarm_id=where.swarm_id)
    if best is None:
        raise NotFound(f"no program of task {task!r}{where.place()} has a measured run yet")
    return best


@router.get("/program-stats", response_model=RunStats)
def get_program_stats(
    store: StoreDep, task: TaskName, fingerprint: FingerprintQuery, where: WhereQuery
) -> RunStats:
    """Mean, count and sample sd of one program's trusted keep/discard runs
    (``Store.program_stats``) on ``hardware``, with run budget ``budget`` (seconds) and from
    ``swarm_id`` when given: the evidence behind a champion (its mean, not one run)."""
    return store.program_stats(
        task, fingerprint, where.hardware, where.budget, swarm_id=where.swarm_id
    )


@router.get("/noise", response_model=NoiseEstimate)
def get_noise(store: StoreDep, task: TaskName, where: WhereQuery) -> NoiseEstimate:
    """The run-to-run noise of ``task`` (``Store.noise``): the pooled within-program
    standard deviation of the trusted keep/discard runs of every program that ran at
    least twice, on ``hardware``, with run budget ``budget`` (seconds) and from
    ``swarm_id`` when given (leaving out hardware or budget pools over all of them).
    ``sd`` is null while no program has run twice; ``identical``: every repeated program
    gave exactly the same metric. Always 200 for a valid query."""
    return store.noise(task, where.hardware, where.budget, swarm_id=where.swarm_id)


@router.get("/progress", response_model=ProgressPage)
def get_progress(
    store: StoreDep, task: TaskName, hardware: Text200 = None, swarm_id: Id128 = None
) -> ProgressPage:
    """Every run of ``task`` in order with the running best among keeps
    (``memory.models.running_best``): the data of the progress chart (autoresearch's
    progress.png)."""
    rows: list[ExperimentPublic] = []
    total = 0
    while len(rows) < PROGRESS_MAX_POINTS:
        page = store.query_traces(
            TraceQuery(
                task=task,
                hardware=hardware,
                swarm_id=swarm_id,
                sort="created_at",
                limit=MAX_PAGE,
                offset=len(rows),
            )
        )
        total = page.count
        rows.extend(page.data)
        if not page.data or len(rows) >= total:
            break
    direction = rows[-1].direction if rows else "minimize"
    metric_name = rows[-1].metric_name if rows else "val_bpb"
    # memory's champion of these runs: drawn kept when the finals chose it (crowned_run)
    champ = store.champion(task, hardware, swarm_id=swarm_id) if rows else None
    kept = charted_keeps(rows, champ.fingerprint if champ is not None else None)
    steps = running_best(rows, direction, kept)
    # each program's first new best is labelled: the start's replicates carry one label
    labels = first_of_each_program(rows, [step.is_best for step in steps])
    points: list[ProgressPoint] = []
    for index, (row, step, drawn, labelled) in enumerate(
        zip(rows, steps, kept, labels, strict=True)
    ):
        points.append(
            ProgressPoint(
                id=row.id,
                index=index,
                created_at=row.created_at,
                status=row.status,
                kept=drawn,
                metric=row.metric,
                best=step.best,
                is_best=step.is_best,
                labelled=labelled,
                label=chart_label(rows, index)[:300] if labelled else "",
                hypothesis=row.hypothesis[:300],
                agent_id=row.agent_id,
            )
        )
    return ProgressPage(
        data=points,
        count=len(points),
        task=task,
        metric_name=metric_name,
        direction=direction,
        truncated=total > len(points),
        kept_changes=sum(kept_change(row) for row in rows),
    )
