"""What memory knows about programs: rebuild a recorded program from its lineage, and
compare programs by metric on one hardware class and budget.

Memory stores each trace's diff against its parent, not whole files; the root of every
lineage is an unmodified task program (a baseline, diff empty). A program is rebuilt by
replaying the diffs from the root, and checked against the trace's fingerprint.
"""

from __future__ import annotations

import logging
import threading
from statistics import fmean

from agents.program import EditError, Program, apply_diff
from memory.base import Store
from memory.errors import NotFound
from memory.models import ExperimentPublic, Status, TraceQuery

log = logging.getLogger(__name__)


class ProgramLibrary:
    """Programs by fingerprint: those this process made, and those rebuilt from memory."""

    def __init__(self, store: Store, root: Program) -> None:
        self.store = store
        self.root = root
        self._by_fp: dict[str, Program] = {root.fingerprint: root}
        self._lock = threading.Lock()

    def put(self, program: Program) -> None:
        with self._lock:
            self._by_fp[program.fingerprint] = program

    def by_fingerprint(self, fingerprint: str) -> Program | None:
        with self._lock:
            return self._by_fp.get(fingerprint)

    def for_trace(self, trace: ExperimentPublic) -> Program | None:
        """The program of ``trace``, or None if its lineage cannot rebuild it."""
        found = self.by_fingerprint(trace.fingerprint)
        if found is not None:
            return found
        try:
            lineage = self.store.lineage(trace.id)
        except NotFound:
            return None
        chain = [*lineage.ancestors, lineage.experiment]
        program: Program | None = None
        for step in chain:
            known = self.by_fingerprint(step.fingerprint)
            if known is not None:
                program = known
                continue
            if program is None:
                log.info("trace %s: lineage root %s is not this task's program", trace.id, step.id)
                return None
            try:
                program = apply_diff(program, step.diff)
            except EditError as exc:
                log.warning("trace %s: cannot replay the diff of %s: %s", trace.id, step.id, exc)
                return None
            if program.fingerprint != step.fingerprint:
                log.warning(
                    "trace %s: replayed program of %s has another fingerprint", trace.id, step.id
                )
                return None
            self.put(program)
        return program


def same_budget(trace: ExperimentPublic, budget: float | None) -> bool:
    """True if ``trace`` ran with ``budget`` seconds (traces without a recorded budget match)."""
    if budget is None:
        return True
    recorded = trace.resources.get("budget_s")
    return recorded is None or abs(float(recorded) - budget) < 1e-6


def metric_of(
    store: Store, task: str, fingerprint: str, hardware: str, budget: float | None = None
) -> float | None:
    """Mean metric of every finished run of a program on a hardware class and budget."""
    page = store.query_traces(
        TraceQuery(
            task=task,
            fingerprint=fingerprint,
            hardware=hardware,
            status=[Status.keep, Status.discard],
            limit=100,
        )
    )
    values = [t.metric for t in page.data if t.metric is not None and same_budget(t, budget)]
    return fmean(values) if values else None


def champion_for(
    store: Store,
    task: str,
    hardware: str,
    budget: float | None = None,
    agent_id: str | None = None,
) -> ExperimentPublic | None:
    """The best kept program of ``task`` on ``hardware`` at this budget (among one
    agent's own traces if ``agent_id`` is given)."""
    page = store.query_traces(
        TraceQuery(
            task=task,
            hardware=hardware,
            agent_id=agent_id,
            status=[Status.keep],
            sort="best",
            limit=50,
        )
    )
    for trace in page.data:
        if trace.metric is not None and same_budget(trace, budget):
            return trace
    return None
