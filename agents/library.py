"""Programs a swarm may run: rebuild a recorded program from its lineage, trusted traces only.

Memory stores each trace's diff against its parent, not whole files; the root of every
lineage is a program this swarm knows (its root: the task's program, or the program the
operator chose with ``--start-from``). A program is rebuilt by replaying the diffs from
there, and checked against the trace's fingerprint.

Trust: only this swarm's own traces are replayed for running. A trace imported from a pack
(``role=seed`` or a non-empty ``source``), or written by another swarm or installation, is
evidence for proposals, never a program to run (see ``docs/security.md``); the one way to
run such a program is the explicit ``labswarm run --start-from`` opt-in, which shows its
diff first (:func:`rebuild_for_review`).
"""

from __future__ import annotations

import logging
import threading

from agents.program import EditError, Program, apply_diff
from memory.base import Store
from memory.errors import NotFound
from memory.models import ExperimentPublic, run_here

log = logging.getLogger(__name__)


class LineageError(ValueError):
    """A trace's program cannot be rebuilt from its lineage (the message says why)."""


def is_trusted(trace: ExperimentPublic, swarm_id: str) -> bool:
    """True if ``trace`` was written by swarm ``swarm_id`` of this installation."""
    return trace.swarm_id == swarm_id and run_here(trace)


def replay(root: Program, chain: list[ExperimentPublic], known: dict[str, Program]) -> Program:
    """The program at the end of ``chain`` (oldest first), replaying diffs from the last
    step whose program is ``known`` (by fingerprint) or from ``root`` for a chain that
    starts from it. Raises :class:`LineageError`."""
    program: Program | None = None
    for step in chain:
        found = known.get(step.fingerprint)
        if found is not None:
            program = found
            continue
        if program is None:
            if not step.diff.strip():
                raise LineageError(f"trace {step.id}: its lineage does not start from a program")
            program = root  # an imported lineage records its first diff against the task
        try:
            program = apply_diff(program, step.diff)
        except EditError as exc:
            raise LineageError(f"cannot replay the diff of trace {step.id}: {exc}") from None
        if program.fingerprint != step.fingerprint:
            raise LineageError(f"the replayed program of trace {step.id} has another fingerprint")
    if program is None:
        raise LineageError("empty lineage")
    return program


def rebuild_for_review(store: Store, root: Program, trace_id: str) -> Program:
    """The program of any trace (imported ones included), rebuilt from ``root`` to be shown
    to the operator before it may run (``--start-from``). Raises :class:`LineageError`."""
    try:
        lineage = store.lineage(trace_id)
    except NotFound:
        raise LineageError(f"no trace {trace_id!r} in memory") from None
    chain = [*lineage.ancestors, lineage.experiment]
    return replay(root, chain, {root.fingerprint: root})


class ProgramLibrary:
    """Programs by fingerprint: those this swarm made, and those rebuilt from its own traces."""

    def __init__(self, store: Store, root: Program, swarm_id: str) -> None:
        self.store = store
        self.root = root
        self.swarm_id = swarm_id
        self._by_fp: dict[str, Program] = {root.fingerprint: root}
        self._lock = threading.Lock()

    def put(self, program: Program) -> None:
        with self._lock:
            self._by_fp[program.fingerprint] = program

    def by_fingerprint(self, fingerprint: str) -> Program | None:
        with self._lock:
            return self._by_fp.get(fingerprint)

    def for_trace(self, trace: ExperimentPublic) -> Program | None:
        """The program of ``trace`` if it may run here, else None: a program this swarm
        made, or one rebuilt from a lineage of this swarm's own traces only."""
        found = self.by_fingerprint(trace.fingerprint)
        if found is not None:
            return found
        try:
            lineage = self.store.lineage(trace.id)
        except NotFound:
            return None
        chain = [*lineage.ancestors, lineage.experiment]
        foreign = [step.id for step in chain if not is_trusted(step, self.swarm_id)]
        if foreign:
            log.warning(
                "trace %s: not rebuilt for running, its lineage holds traces from outside "
                "this swarm (%s)",
                trace.id,
                ", ".join(foreign[:3]),
            )
            return None
        with self._lock:
            known = dict(self._by_fp)
        try:
            program = replay(self.root, chain, known)
        except LineageError as exc:
            log.warning("trace %s: %s", trace.id, exc)
            return None
        self.put(program)
        return program
