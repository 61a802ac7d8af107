"""The swarm in the terminal (Rich): a live table per agent and an end summary; the
swarm's ``results.tsv`` and ``progress.png`` (through ``memory.exports``).

Live columns: agent, device, status, current hypothesis, elapsed/budget of the run in
flight, experiments done, the agent's base metric; the title holds the champion, and the
leader while it is not the champion (the best mean so far, unconfirmed).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agents.board import AgentBoard
from agents.judge import short_run_agreement
from agents.task import Task
from memory.base import Evidence, Store
from memory.models import ExperimentPublic, Role, RunStats, TraceQuery, kept_change

if TYPE_CHECKING:
    from agents.swarm import SwarmConfig

STATUS_STYLE = {
    "keep": "green",
    "discard": "white",
    "crash": "red",
    "timeout": "red",
    "invalid": "yellow",
    "duplicate": "cyan",
    "near_duplicate": "cyan",
    "interrupted": "magenta",
}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


class Watched(Protocol):
    """What the view reads of a swarm (the embedded one, or a cluster swarm)."""

    store: Store
    task: Task
    swarm_id: str
    directory: Path
    hardware: str
    budget: float
    noise: float
    board: dict[str, AgentBoard]
    board_lock: threading.Lock
    config: SwarmConfig


def _evidence(swarm: Watched) -> Evidence:
    """This swarm's evidence (``Store.evidence``, one read): its champion (what its agents
    move onto), its leader and each program's stats."""
    return swarm.store.evidence(
        swarm.task.name, swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id
    )


def _leader(evidence: Evidence) -> tuple[ExperimentPublic, RunStats] | None:
    """The leader (``Store.leader``) and its runs' stats, when it is not the champion: the
    best mean so far, unconfirmed (``--retest end`` re-tests the best programs after the
    search; the champion rule may still find it inside the noise)."""
    leader, champion = evidence.leader, evidence.champion
    if leader is None or (champion is not None and leader.fingerprint == champion.fingerprint):
        return None
    return leader, evidence.stats(leader.fingerprint)


def swarm_traces(swarm: Watched) -> list[ExperimentPublic]:
    """Every trace of this swarm, oldest first."""
    return swarm.store.every_trace(TraceQuery(task=swarm.task.name, swarm_id=swarm.swarm_id))


def _champion_value(swarm: Watched, evidence: Evidence) -> str:
    """``val_bpb 0.9731 (mean of 4 runs)``: what the champion was chosen by (the mean of
    its runs here, as the dashboard's card shows it), not its first run's metric."""
    champ = evidence.champion
    if champ is None:
        return f"{swarm.task.metric_name} -"
    stats = evidence.stats(champ.fingerprint)
    return f"{swarm.task.metric_name} {_fmt(stats.mean)} (mean of {stats.n} run(s))"


def agents_table(swarm: Watched) -> Table:
    evidence = _evidence(swarm)
    title = (
        f"swarm {swarm.swarm_id} | task {swarm.task.name} | {swarm.hardware} | "
        f"budget {swarm.budget:g}s | noise {swarm.noise:.3g} | champion "
        f"{_champion_value(swarm, evidence)}"
    )
    leading = _leader(evidence)
    if leading is not None:
        title += f" | leading {_fmt(leading[1].mean)} ({leading[1].n} run(s), unconfirmed)"
    table = Table(title=title, expand=True)
    for col in ("agent", "device", "status", "hypothesis", "elapsed", "done", "base", "last"):
        table.add_column(col, overflow="fold" if col == "hypothesis" else "ellipsis")
    now = time.time()
    with swarm.board_lock:
        boards = list(swarm.board.values())
    for b in boards:
        elapsed = f"{now - b.run_started:.0f}/{swarm.budget:g}s" if b.run_started else "-"
        table.add_row(
            b.name,
            b.device,
            b.status,
            b.hypothesis[:120],
            elapsed,
            str(b.experiments),
            _fmt(b.base_metric),
            Text(b.last, style=STATUS_STYLE.get(b.last, "")),
        )
    return table


class LiveView:
    """Refreshes the agents table while the swarm runs (``with LiveView(swarm): ...``)."""

    def __init__(self, swarm: Watched, console: Console | None = None) -> None:
        self.swarm = swarm
        self.console = console or Console()
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        self._live = Live(
            _Renderable(self.swarm), console=self.console, refresh_per_second=2, transient=False
        )
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)


class _Renderable:
    def __init__(self, swarm: Watched) -> None:
        self.swarm = swarm

    def __rich__(self) -> Any:
        try:
            return agents_table(self.swarm)
        except Exception as exc:  # a failed refresh must not end the swarm
            return Text(f"(view unavailable: {exc})")


def summary(swarm: Watched, traces: list[ExperimentPublic]) -> Group:
    """End-of-swarm summary: counts by status, the champion, the keeps."""
    counts = Counter(t.status.value for t in traces)
    evidence = _evidence(swarm)
    champ = evidence.champion
    lines: list[Text | Table] = [
        Text(
            f"swarm {swarm.swarm_id} ended: {len(traces)} traces in {swarm.directory} "
            f"(sampler seed {swarm.config.seed})"
        ),
        Text("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no traces"),
    ]
    if champ is not None:
        lines.append(
            Text(
                f"champion {champ.id} {_champion_value(swarm, evidence)}: {champ.hypothesis}",
                style="bold green",
            )
        )
    leading = _leader(evidence)
    if leading is not None:
        leader, stats = leading
        lines.append(
            Text(
                f"leading, unconfirmed: {leader.id} {swarm.task.metric_name} "
                f"{_fmt(stats.mean)} (mean of {stats.n} run(s)): the best mean so far, not "
                "the champion -- its runs that no verdict chose (re-measures, a swarm's "
                "finals) have not shown it better than the start beyond the noise; a swarm "
                "with --retest end re-tests its best after its search, a stopped one when "
                f"resumed: {leader.hypothesis}",
                style="yellow",
            )
        )
    agreement = short_run_agreement(traces)
    if agreement is not None:
        lines.append(
            Text(
                f"short runs against full runs: Spearman rank correlation {agreement.rho:.2f} "
                f"over the {agreement.pairs} programs the short runs promoted (near 0 or "
                "below: the short budget does not tell which programs are best at the full "
                "one, so runs at several budgets are unlikely to pay; docs/judging.md)"
            )
        )
    kept = [t for t in traces if kept_change(t)]
    if kept:
        keeps = Table(title="kept changes", expand=True)
        for col in ("trace", "agent", swarm.task.metric_name, "hypothesis"):
            keeps.add_column(col)
        for t in kept:
            agent = (t.agent_id or "").split("/")[-1]
            keeps.add_row(t.id[:8], agent, _fmt(t.metric), t.hypothesis)
        lines.append(keeps)
    else:
        lines.append(Text("kept changes: none (no proposal was judged better than its base)"))
    return Group(*lines, _retested(swarm, traces, evidence))


def _retested(swarm: Watched, traces: list[ExperimentPublic], evidence: Evidence) -> Table:
    """The programs this swarm ran more than once -- the start's replicates, confirmed
    keeps, re-measured contenders and finalists --, each with its runs' mean; these runs,
    recorded ``keep`` when they ran, are measurements, not kept changes."""
    firsts: dict[str, ExperimentPublic] = {}
    for t in traces:
        if t.role in (Role.experiment, Role.baseline):
            firsts.setdefault(t.fingerprint, t)
    table = Table(title="programs run more than once", expand=True)
    for col in ("program", "runs", f"mean {swarm.task.metric_name}", "verdict", "hypothesis"):
        table.add_column(col)
    champion = evidence.champion
    for fingerprint, first in firsts.items():
        stats = evidence.stats(fingerprint)
        if stats.n < 2:
            continue
        if champion is not None and champion.fingerprint == fingerprint:
            verdict = "champion"
        elif first.role == Role.baseline and first.parent_id is None:
            verdict = "the start"
        else:
            verdict = "not the champion"
        table.add_row(first.id[:8], str(stats.n), _fmt(stats.mean), verdict, first.hypothesis)
    return table


def write_outputs(swarm: Watched, traces: list[ExperimentPublic]) -> tuple[Path, Path]:
    """``results.tsv`` and ``progress.png`` of this swarm into its directory, with this
    swarm's champion drawn kept (``memory.models.crowned_run``)."""
    from memory.exports import progress_png, write_results_tsv

    champion = _evidence(swarm).champion  # a champion the finals chose is drawn kept
    fingerprint = champion.fingerprint if champion is not None else None
    tsv = write_results_tsv(traces, swarm.directory / "results.tsv", champion=fingerprint)
    png = progress_png(
        traces,
        swarm.directory / "progress.png",
        title=f"{swarm.task.name} - {swarm.swarm_id}",
        champion=fingerprint,
    )
    return Path(tsv), Path(png)
