"""Insights: what the runs of a task say, consolidated as the swarm runs (issue 15).

For each task, hardware class and budget, computed from the trusted traces (run here:
``memory.models.run_here``) without an LLM:

- **knob insights** (``KnobInsight``): for every knob and direction of move (``up``/``down``
  for numbers, ``on``/``off`` for flags, ``set`` to one value otherwise), over the
  experiments that made that move: how many ran, the mean gain of their program over their
  base in metric units and in units of the noise (the pooled sd, ``Store.noise``), the
  spread of those per-run effects, how many crashed or timed out, and the crash rate by
  region of the knob's new value;
- **idea insights** (``IdeaInsight``): free-form code edits (no knob changes) grouped by
  meaning (the store's embedder on each hypothesis; mean cosine >= ``IDEA_SIMILARITY`` to
  a group's ideas), with what each did.

Per run: ``gain = memory.models.gain(program mean, base mean, direction)`` where the
program mean is ``Store.program_stats`` of the run's program (its run, confirmation and
re-measures) and the base mean is what the verdict was judged against (``base_metric``), or
the parent program's stats for traces that did not record it; ``effect = gain / noise sd``.
A run is **stale** when the champion now beats its base by the keep rule's margin
(``outgrown``: the rule of a stale failure, ``memory.models.beats``) and the champion is
not built on it (the run's program is neither the champion nor one of its ancestors); an
insight is stale when every run behind it is. Every insight lists the ids of its traces
(``Store.get_trace`` resolves them).

Incremental: a per-store, per-task cache holds the trusted traces read so far and the
embedding of every hypothesis; a call first counts the task's trusted traces and findings
(two cheap queries) and returns the cached report when neither changed, else reads only
the traces created since the newest one it holds (``memory._mirror.TraceMirror``: with an
overlap for writers whose clocks or commits lag; a count that still disagrees triggers a
full read) and embeds only new hypotheses.

Exported packs carry each insight as a finding (``InsightReport.findings``) whose
``evidence`` holds the whole insight; importing the pack brings it back intact, as an
``ImportedInsight`` of the report (evidence from elsewhere, never mixed with this
installation's own numbers).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from memory._mirror import TraceMirror
from memory.models import (
    CRASHED_STATUSES,
    MEASURED_ROLES,
    MEASURED_STATUSES,
    RAN_STATUSES,
    Direction,
    ExperimentPublic,
    FindingCreate,
    FindingOutcome,
    FindingPublic,
    Role,
    RunStats,
    Status,
    TraceQuery,
    beats,
    gain,
    run_here,
    run_stats,
)

if TYPE_CHECKING:
    from memory.base import Evidence, Store
    from memory.embed import Embedder

# Failures a later base may fix (``agents.nodes`` recall: "failed on an older base").
FAILED_STATUSES: tuple[Status, ...] = (Status.crash, Status.timeout, Status.discard, Status.invalid)

# mean cosine to a group's ideas to join it: MiniLM puts paraphrases of one idea at
# 0.46-0.62 and different ideas at 0.07-0.34 (docs/memory.md, Insights)
IDEA_SIMILARITY = 0.45
MAX_RUNS = 100  # runs listed per insight (the newest; counts and means use all of them)
MAX_IDS = 2000  # trace ids listed per insight (the newest)
REGIONS = 3  # crash rate by region: up to this many bins of a numeric knob's new values
EVIDENCE_KEY = "insight"  # FindingCreate.evidence[EVIDENCE_KEY]: an exported insight

Move = Literal["up", "down", "on", "off", "set"]


# ---------------------------------------------------------------------------
# the stale rule (one definition; agents.nodes.stale_failures applies it to recall)
# ---------------------------------------------------------------------------


def recorded_base(trace: ExperimentPublic) -> RunStats | None:
    """The base a trace's verdict was judged against, when it recorded one."""
    if trace.base_metric is None:
        return None
    return RunStats(mean=trace.base_metric, n=trace.base_n or 1, sd=None)


def outgrown(
    base: RunStats,
    champion: RunStats,
    direction: Direction,
    sd: float | None,
    df: int,
    *,
    known: bool = False,
) -> bool:
    """True when the ``champion`` beats ``base`` beyond the noise (``memory.models.beats``):
    whatever was measured on ``base`` was measured on an older base."""
    return beats(champion.mean, champion.n, base.mean, base.n, direction, sd, df, known=known)


def stale(
    trace: ExperimentPublic,
    base: RunStats | None,
    champion: RunStats,
    built_on: Callable[[], set[str]],
    direction: Direction,
    sd: float | None,
    df: int,
    *,
    known: bool = False,
) -> bool:
    """The stale rule: ``trace`` was measured on a ``base`` (None: unknown, never stale)
    the ``champion`` has ``outgrown``, and the champion is not built on its program
    (``built_on``: the fingerprints, asked only when the base is outgrown)."""
    return (
        base is not None
        and outgrown(base, champion, direction, sd, df, known=known)
        and trace.fingerprint not in built_on()
    )


def programs_built_on(
    champion: ExperimentPublic | None, parent: Callable[[str], ExperimentPublic | None]
) -> set[str]:
    """The programs (fingerprints) the ``champion`` is built on: its own and its
    ancestors' by ``parent_id`` (``parent``: a trace by id, None when unknown). What they
    measured is in the champion, so a run of one of them is never stale."""
    out: set[str] = set()
    seen: set[str] = set()
    t = champion
    while t is not None and t.id not in seen:
        seen.add(t.id)
        out.add(t.fingerprint)
        t = parent(t.parent_id) if t.parent_id else None
    return out


def stale_failures(
    traces: Iterable[ExperimentPublic],
    champion: RunStats,
    base_of: Callable[[ExperimentPublic], RunStats | None],
    direction: Direction,
    sd: float | None,
    df: int,
    *,
    known: bool = False,
    built_on: Callable[[], set[str]] = set,
) -> list[str]:
    """Ids of the failures (``FAILED_STATUSES``, role experiment, with a parent) among
    ``traces`` that are :func:`stale`: their base (``base_of``: the recorded one, else the
    parent program's stats; ``None``: unknown, never stale) is ``outgrown`` and the
    champion is not ``built_on`` their program (:func:`programs_built_on`, asked once and
    only when a failure's base is outgrown; a champion crowned by its finals may be a
    program whose first run was discarded)."""
    mine = functools.cache(built_on)
    return [
        t.id
        for t in traces
        if t.status in FAILED_STATUSES
        and t.role == Role.experiment
        and t.parent_id
        and stale(t, base_of(t), champion, mine, direction, sd, df, known=known)
    ]


# ---------------------------------------------------------------------------
# the models
# ---------------------------------------------------------------------------


class InsightRun(BaseModel):
    """One trace behind an insight and what it did."""

    id: str
    status: Status
    hypothesis: str = ""
    value: Any = None  # a knob insight: the knob's new value
    gain: float | None = None  # program mean over base mean, metric units (+: better)
    effect: float | None = None  # gain / noise sd
    stale: bool = False  # measured on a base the champion has outgrown


class Region(BaseModel):
    """Runs of a numeric knob move whose new value lay in ``lo..hi``."""

    lo: float
    hi: float
    n: int
    crashes: int
    crash_rate: float


class InsightBase(BaseModel):
    task: str
    hardware: str
    budget_s: float | None
    metric_name: str = "val_bpb"
    direction: Direction = "minimize"
    n: int  # runs behind it (measured or crashed)
    measured: int  # of them, with a program mean and a known base
    crashes: int  # of them, crashed or timed out
    crash_rate: float
    mean_gain: float | None  # metric units, positive = better than the base
    effect: float | None  # mean_gain / noise_sd
    effect_sd: float | None  # sample sd of the per-run effects (noise units)
    base_mean: float | None  # mean of the runs' base means
    noise_sd: float | None  # the pooled noise of this task, hardware and budget
    trace_ids: list[str]  # newest last (at most MAX_IDS)
    runs: list[InsightRun]  # newest last (at most MAX_RUNS)
    stale: bool  # every run behind it is stale
    strength: float  # ranking: max(|effect| * sqrt(measured), crashes)

    def _numbers(self) -> str:
        bits: list[str] = []
        if self.effect is not None and self.mean_gain is not None:
            word = (
                "better" if self.mean_gain > 0 else "worse" if self.mean_gain < 0 else "no change"
            )
            amount = f" by {abs(self.effect):.2g} noise sd" if self.mean_gain else ""
            spread = f", spread {self.effect_sd:.2g}" if self.effect_sd is not None else ""
            bits.append(f"{word}{amount} ({self.measured} measured{spread})")
        elif self.mean_gain is not None:
            word = (
                "better" if self.mean_gain > 0 else "worse" if self.mean_gain < 0 else "no change"
            )
            bits.append(
                f"{word} by {abs(self.mean_gain):.4g} {self.metric_name} "
                f"({self.measured} measured, noise unknown)"
            )
        if self.crashes:
            bits.append(f"{self.crashes}/{self.n} crashed")
        elif not bits:
            bits.append(f"{self.n} run(s), none measured against a known base")
        return "; ".join(bits)

    def _ids(self, shown: int = 3) -> str:
        """`` [traces a,b,c +N]``: the newest trace ids, short."""
        ids = [i[:8] for i in self.trace_ids[-shown:]]
        more = len(self.trace_ids) - len(ids)
        return " [traces " + ",".join(ids) + (f" +{more}" if more > 0 else "") + "]"

    def _stale(self) -> str:
        return (
            " -- stale: measured on an older base (the champion has moved since)"
            if (self.stale)
            else ""
        )


class KnobInsight(InsightBase):
    """The measured effect of moving one knob one way."""

    kind: Literal["knob"] = "knob"
    knob: str
    move: Move
    value: str | None = None  # move "set": the value it was set to
    alone: int  # runs that moved only this knob
    regions: list[Region]

    def line(self, ids: bool = True) -> str:
        """One line: the move, its numbers, the newest trace ids (``ids``), stale or not."""
        what = f"{self.knob} {self.move}" + (f" to {self.value}" if self.value else "")
        crash_at = [
            f"{r.crashes}/{r.n} at {r.lo:g}" + (f"..{r.hi:g}" if r.hi != r.lo else "")
            for r in self.regions
            if r.crashes
        ]
        where = f" ({'; '.join(crash_at)})" if crash_at and len(self.regions) > 1 else ""
        alone = "" if self.alone == self.n else f", {self.alone} of {self.n} alone"
        traces = self._ids() if ids else ""
        return f"{what}: {self._numbers()}{where}{alone}{traces}{self._stale()}"


class IdeaInsight(InsightBase):
    """Free-form code edits that mean the same thing, and what they did."""

    kind: Literal["idea"] = "idea"
    idea: str  # the group's first hypothesis
    keeps: int
    discards: int

    def line(self, ids: bool = True) -> str:
        """One line: the idea, its tries, numbers, newest trace ids (``ids``), stale or not."""
        idea = " ".join(self.idea.split())
        idea = idea if len(idea) <= 90 else idea[:89] + "..."
        tries = f"{self.n} tr{'y' if self.n == 1 else 'ies'}: {self.keeps} kept"
        traces = self._ids() if ids else ""
        return f'idea "{idea}" ({tries}): {self._numbers()}{traces}{self._stale()}'


AnyInsight = Annotated[KnobInsight | IdeaInsight, Field(discriminator="kind")]


class ImportedInsight(BaseModel):
    """An insight exported by another installation, imported from a pack as a finding:
    evidence from elsewhere, shown apart from this installation's own."""

    finding_id: str
    pack: str
    source: str
    insight: AnyInsight


class InsightReport(BaseModel):
    """The insights of one task (``Store.insights``), for every hardware class and budget
    of its trusted runs, or only ``hardware``/``budget_s`` when given."""

    task: str
    hardware: str | None = None
    budget_s: float | None = None
    traces: int  # trusted traces of the task read
    newest: datetime | None  # created_at of the newest of them
    knobs: list[KnobInsight] = []
    ideas: list[IdeaInsight] = []
    imported: list[ImportedInsight] = []

    def ranked(self) -> list[KnobInsight | IdeaInsight]:
        """This installation's insights, fresh before stale, strongest evidence first."""
        both: list[KnobInsight | IdeaInsight] = [*self.knobs, *self.ideas]
        return sorted(both, key=lambda i: (i.stale, -i.strength))

    def prompt_lines(self, limit: int = 12) -> list[str]:
        """At most ``limit`` short plain-text lines for an LLM prompt: this installation's
        insights (fresh first, strongest first), then imported ones."""
        if limit <= 0:
            return []
        lines = [i.line() for i in self.ranked()]
        many = len({(i.hardware, i.budget_s) for i in self.ranked()}) > 1
        if many:  # say which class each line is about
            lines = [f"[{_where(i)}] {i.line()}" for i in self.ranked()]
        for imp in sorted(self.imported, key=lambda m: -m.insight.strength):
            lines.append(f"(imported from {imp.pack or imp.source}) {imp.insight.line()}")
        return lines[:limit]

    def findings(self, source: str = "labswarm insights") -> list[FindingCreate]:
        """Every insight of this report as a finding carrying the whole insight in its
        ``evidence`` (what an exported pack holds; ``ImportedInsight`` reads it back)."""
        return [insight_finding(i, source) for i in self.ranked()]


def _where(i: InsightBase) -> str:
    budget = f", {i.budget_s:g} s" if i.budget_s is not None else ""
    return f"{i.hardware or 'any hardware'}{budget}"


def _outcome(i: InsightBase) -> FindingOutcome:
    if i.n and i.crash_rate >= 0.5:
        return "crash"
    if i.mean_gain is None or i.mean_gain == 0:
        return "note"
    return "keep" if i.mean_gain > 0 else "discard"


def insight_finding(insight: KnobInsight | IdeaInsight, source: str) -> FindingCreate:
    """One insight as a finding: ``change`` its line, ``outcome`` keep/discard by the sign
    of its mean gain (crash when at least half its runs crashed, note without a gain),
    ``before``/``after`` the mean base and base + mean gain, and the whole insight in
    ``evidence`` (id: a hash of its content, so re-exporting it adds nothing)."""
    body = insight.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    after = None
    if insight.base_mean is not None and insight.mean_gain is not None:
        sign = -1.0 if insight.direction == "minimize" else 1.0
        after = insight.base_mean + sign * insight.mean_gain
    return FindingCreate(
        id=f"i-{digest}",
        task=insight.task,
        change=insight.line(),
        outcome=_outcome(insight),
        metric_name=insight.metric_name,
        before=insight.base_mean,
        after=after,
        hardware=insight.hardware,
        source=source,
        evidence={EVIDENCE_KEY: body},
    )


def imported_insight(finding: FindingPublic) -> ImportedInsight | None:
    """The insight an imported finding carries (``None``: not an insight)."""
    body = finding.evidence.get(EVIDENCE_KEY) if isinstance(finding.evidence, dict) else None
    if not isinstance(body, dict):
        return None
    try:
        insight = _ANY.validate_python(body)
    except ValidationError:
        return None
    return ImportedInsight(
        finding_id=finding.id, pack=finding.pack, source=finding.source, insight=insight
    )


def _identity(imp: ImportedInsight) -> tuple[Any, ...]:
    """What stays the same across exports of one insight as its runs grow: where it came
    from, its class, and the move (knob) or the group's first idea."""
    i = imp.insight
    what = (i.knob, i.move, i.value) if isinstance(i, KnobInsight) else (i.idea,)
    return (imp.source, i.kind, i.task, i.hardware, i.budget_s, *what)


def latest_versions(imported: Iterable[ImportedInsight]) -> list[ImportedInsight]:
    """One version of each imported insight (``_identity``): the one with the most runs
    behind it (an insight's runs only grow; ties: by finding id), so that packs exported
    one after the other from the same memory do not show the same insight twice."""
    best: dict[tuple[Any, ...], ImportedInsight] = {}
    for imp in imported:
        key = _identity(imp)
        have = best.get(key)
        if have is None or (imp.insight.n, imp.finding_id) > (have.insight.n, have.finding_id):
            best[key] = imp
    return list(best.values())


def _any_adapter() -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(AnyInsight)


_ANY = _any_adapter()


# ---------------------------------------------------------------------------
# computing
# ---------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def knob_move(old: Any, new: Any) -> tuple[Move, str | None]:
    """How a knob moved: up/down (numbers), on/off (flags), else set to ``new``."""
    a, b = _number(old), _number(new)
    if a is not None and b is not None and a != b:
        return ("up" if b > a else "down"), None
    if isinstance(new, bool):
        return ("on" if new else "off"), None
    return "set", json.dumps(new, sort_keys=True, default=str)[:100]


def _measured_here(t: ExperimentPublic) -> bool:
    """``memory.base._measured_query``'s rule on one trace: trusted, ``MEASURED_STATUSES``,
    ``MEASURED_ROLES``, a finite metric."""
    return (
        run_here(t)
        and t.status in MEASURED_STATUSES
        and t.role in MEASURED_ROLES
        and t.metric is not None
        and math.isfinite(t.metric)
    )


@dataclass
class _Class:
    """What one hardware class and budget of a task needs to judge a run's effect."""

    evidence: Evidence
    direction: Direction
    metric_name: str
    by_id: dict[str, ExperimentPublic]

    @property
    def sd(self) -> float | None:
        sd = self.evidence.noise.sd
        return sd if sd else None

    def base(self, t: ExperimentPublic) -> RunStats | None:
        recorded = recorded_base(t)
        if recorded is not None:
            return recorded
        parent = self.by_id.get(t.parent_id or "")
        if parent is None:
            return None
        stats = self.evidence.stats(parent.fingerprint)
        return stats if stats.mean is not None else None

    def champion(self) -> RunStats | None:
        champ = self.evidence.champion
        return self.evidence.stats(champ.fingerprint) if champ is not None else None

    @functools.cached_property
    def built_on(self) -> set[str]:
        """The programs the champion is built on (:func:`programs_built_on`)."""
        return programs_built_on(self.evidence.champion, self.by_id.get)

    def run(self, t: ExperimentPublic, value: Any = None) -> InsightRun:
        out = InsightRun(id=t.id, status=t.status, hypothesis=t.hypothesis[:200], value=value)
        base = self.base(t)
        champion = self.champion()
        if champion is not None:
            noise = self.evidence.noise
            out.stale = stale(
                t, base, champion, lambda: self.built_on, self.direction, noise.sd, noise.df
            )
        if t.status in MEASURED_STATUSES and base is not None and base.mean is not None:
            mean = self.evidence.stats(t.fingerprint).mean
            if mean is None and t.metric is not None and math.isfinite(t.metric):
                mean = t.metric
            if mean is not None:
                out.gain = gain(mean, base.mean, self.direction)
                out.effect = out.gain / self.sd if self.sd else None
        return out

    def summary(self, runs: list[tuple[ExperimentPublic, InsightRun]]) -> dict[str, Any]:
        """The shared numbers of an insight over ``runs`` (oldest first)."""
        measured = [r for _, r in runs if r.gain is not None]
        crashes = sum(1 for t, _ in runs if t.status in CRASHED_STATUSES)
        gains = [r.gain for r in measured if r.gain is not None]
        effects = [r.effect for r in measured if r.effect is not None]
        mean_gain = math.fsum(gains) / len(gains) if gains else None
        effect = mean_gain / self.sd if mean_gain is not None and self.sd else None
        bases = [b.mean for t, _ in runs if (b := self.base(t)) is not None and b.mean is not None]
        strength = max(
            abs(effect) * math.sqrt(len(measured)) if effect is not None else 0.0, crashes
        )
        return {
            "metric_name": self.metric_name,
            "direction": self.direction,
            "n": len(runs),
            "measured": len(measured),
            "crashes": crashes,
            "crash_rate": crashes / len(runs) if runs else 0.0,
            "mean_gain": mean_gain,
            "effect": effect,
            "effect_sd": run_stats(effects).sd if len(effects) == len(gains) else None,
            "base_mean": math.fsum(bases) / len(bases) if bases else None,
            "noise_sd": self.sd,
            "trace_ids": [t.id for t, _ in runs][-MAX_IDS:],
            "runs": [r for _, r in runs][-MAX_RUNS:],
            "stale": bool(runs) and all(r.stale for _, r in runs),
            "strength": strength,
        }


def _regions(runs: list[tuple[ExperimentPublic, InsightRun]]) -> list[Region]:
    """Crash rate by region of a numeric knob's new value: one region per distinct value
    up to ``REGIONS`` of them, else ``REGIONS`` runs of about equal size (equal values never
    split)."""
    valued = sorted(
        ((v, t.status in CRASHED_STATUSES) for t, r in runs if (v := _number(r.value)) is not None),
        key=lambda p: p[0],
    )
    if not valued:
        return []
    distinct = sorted({v for v, _ in valued})
    chunks: list[list[tuple[float, bool]]] = []
    if len(distinct) <= REGIONS:
        chunks = [[p for p in valued if p[0] == v] for v in distinct]
    else:
        size = math.ceil(len(valued) / REGIONS)
        for p in valued:
            if chunks and (len(chunks[-1]) < size or chunks[-1][-1][0] == p[0]):
                chunks[-1].append(p)
            else:
                chunks.append([p])
    return [
        Region(
            lo=c[0][0],
            hi=c[-1][0],
            n=len(c),
            crashes=sum(1 for _, crashed in c if crashed),
            crash_rate=sum(1 for _, crashed in c if crashed) / len(c),
        )
        for c in chunks
    ]


def _idea_text(t: ExperimentPublic) -> str:
    if t.hypothesis.strip():
        return t.hypothesis.strip()[:1000]
    changed = [ln for ln in t.diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    return "\n".join(changed)[:600]


def _group(vectors: list[list[float]], threshold: float) -> list[list[int]]:
    """Greedy grouping, oldest first: each item joins the group whose members it is most
    similar to on average (cosine of unit vectors), if that mean is at least
    ``threshold``, else starts a group. The mean cosine to a group is the dot product
    with the sum of its members over their count, so each item costs one product per
    group."""
    groups: list[list[int]] = []
    if not vectors:
        return groups
    matrix = np.asarray(vectors, dtype=np.float64)
    sums = np.zeros_like(matrix)  # row k: the sum of group k's members
    for i, v in enumerate(matrix):
        if groups:
            sims = sums[: len(groups)] @ v / np.array([len(g) for g in groups])
            k = len(groups) - 1 - int(np.argmax(sims[::-1]))  # the last of equal bests
            if sims[k] >= threshold:
                groups[k].append(i)
                sums[k] += v
                continue
        sums[len(groups)] = v
        groups.append([i])
    return groups


def _slim(t: ExperimentPublic) -> ExperimentPublic:
    return t.model_copy(update={"log_tail": "", "diff": t.diff[:2000]})


@dataclass
class _TaskCache:
    traces: TraceMirror
    lock: threading.Lock = field(default_factory=threading.Lock)
    findings: int = -1
    imported: list[ImportedInsight] = field(default_factory=list)
    vectors: dict[str, list[float]] = field(default_factory=dict)
    embedder: str = ""
    reports: dict[tuple[str | None, float | None], InsightReport] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, dict[str, _TaskCache]] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(store: Store, task: str) -> _TaskCache:
    with _CACHES_LOCK:
        per_store = _CACHES.setdefault(store, {})
        if task not in per_store:
            per_store[task] = _TaskCache(TraceMirror(TraceQuery(task=task, trusted=True), _slim))
        return per_store[task]


def _refresh(store: Store, cache: _TaskCache, task: str) -> bool:
    """Bring the cache up to the store; True when anything changed."""
    added = cache.traces.refresh(store)
    found = store.query_findings(task=task, limit=1).count
    if not added and found == cache.findings:
        return False
    if found != cache.findings:
        cache.imported = latest_versions(
            imp for f in store.every_finding(task) if (imp := imported_insight(f)) is not None
        )
        cache.findings = found
    cache.reports.clear()
    return True


def compute_insights(
    store: Store, task: str, hardware: str | None = None, budget: float | None = None
) -> InsightReport:
    """``Store.insights``: the insights of ``task`` (see the module docstring), from the
    cache when no trace or finding of the task was added since the last call."""
    cache = _cache(store, task)
    with cache.lock:
        _refresh(store, cache, task)
        key = (hardware, budget)
        if key not in cache.reports:
            cache.reports[key] = _report(store, cache, task, hardware, budget)
        return cache.reports[key]


def _report(
    store: Store,
    cache: _TaskCache,
    task: str,
    hardware: str | None,
    budget: float | None,
) -> InsightReport:
    from memory.base import evidence_of
    from memory.embed import store_embedder

    traces = cache.traces.oldest_first()
    classes: dict[tuple[str, float | None], list[ExperimentPublic]] = {}
    for t in traces:
        if hardware is not None and t.hardware != hardware:
            continue
        if budget is not None and t.budget_s != budget:
            continue
        classes.setdefault((t.hardware, t.budget_s), []).append(t)
    knobs: list[KnobInsight] = []
    ideas: list[IdeaInsight] = []
    embedder = store_embedder(store)
    if cache.embedder != embedder.name:
        cache.vectors.clear()
        cache.embedder = embedder.name
    for (hw, b), members in sorted(classes.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0.0)):
        last = members[-1]
        cls = _Class(
            evidence=evidence_of([t for t in members if _measured_here(t)]),
            direction=last.direction,
            metric_name=last.metric_name,
            by_id={t.id: t for t in members},
        )
        tried = [
            t
            for t in members
            if run_here(t)
            and t.role == Role.experiment
            and t.parent_id  # a change of some base (a root changes nothing)
            and t.status in RAN_STATUSES  # a try of its move: it ran, or crashed trying
        ]
        where = {"task": task, "hardware": hw, "budget_s": b}
        knobs.extend(_knob_insights(cls, [t for t in tried if t.knobs], where))
        ideas.extend(_idea_insights(cls, [t for t in tried if not t.knobs], where, cache, embedder))
    return InsightReport(
        task=task,
        hardware=hardware,
        budget_s=budget,
        traces=len(traces),
        newest=cache.traces.newest,
        knobs=sorted(knobs, key=lambda i: (i.stale, -i.strength)),
        ideas=sorted(ideas, key=lambda i: (i.stale, -i.strength)),
        imported=[
            imp
            for imp in cache.imported
            if (hardware is None or imp.insight.hardware == hardware)
            and (budget is None or imp.insight.budget_s == budget)
        ],
    )


def _knob_insights(
    cls: _Class, tried: list[ExperimentPublic], where: dict[str, Any]
) -> list[KnobInsight]:
    moves: dict[tuple[str, Move, str | None], list[tuple[ExperimentPublic, InsightRun]]] = {}
    for t in tried:
        for knob, change in t.knobs.items():
            if not isinstance(change, list | tuple) or len(change) != 2:
                continue
            move, value = knob_move(change[0], change[1])
            moves.setdefault((knob, move, value), []).append((t, cls.run(t, change[1])))
    out = []
    for (knob, move, value), runs in moves.items():
        out.append(
            KnobInsight(
                **where,
                **cls.summary(runs),
                knob=knob,
                move=move,
                value=value,
                alone=sum(1 for t, _ in runs if len(t.knobs) == 1),
                regions=_regions(runs) if move in ("up", "down") else [],
            )
        )
    return out


def _idea_insights(
    cls: _Class,
    tried: list[ExperimentPublic],
    where: dict[str, Any],
    cache: _TaskCache,
    embedder: Embedder,
) -> list[IdeaInsight]:
    texts = {t.id: _idea_text(t) for t in tried}
    tried = [t for t in tried if texts[t.id]]
    new = [t for t in tried if t.id not in cache.vectors]
    if new:
        for t, vec in zip(new, embedder.embed([texts[t.id] for t in new]), strict=True):
            cache.vectors[t.id] = vec
    out = []
    for group in _group([cache.vectors[t.id] for t in tried], IDEA_SIMILARITY):
        members = [tried[i] for i in group]
        runs = [(t, cls.run(t)) for t in members]
        out.append(
            IdeaInsight(
                **where,
                **cls.summary(runs),
                idea=texts[members[0].id],
                keeps=sum(1 for t in members if t.status == Status.keep),
                discards=sum(1 for t in members if t.status == Status.discard),
            )
        )
    return out
