"""Which recorded programs a swarm may rebuild for running: its own lineages only."""

from __future__ import annotations

import pytest

from agents.knobs import set_knobs
from agents.library import LineageError, ProgramLibrary, rebuild_for_review
from agents.program import Program, diff
from agents.task import load_task
from memory.models import ExperimentCreate, Role, Status
from tests.agents.conftest import make_task


def _chain(store, root: Program, child: Program, *, swarm_id: str | None, source: str = ""):
    """A baseline of ``root`` and a keep of ``child`` on top of it; the child's id."""
    base = store.add_trace(
        ExperimentCreate(
            task="quad",
            swarm_id=swarm_id,
            role=Role.baseline if not source else Role.seed,
            fingerprint=root.fingerprint,
            status=Status.keep,
            metric=1.0,
            source=source,
        )
    )
    kid = store.add_trace(
        ExperimentCreate(
            task="quad",
            swarm_id=swarm_id,
            parent_id=base.id,
            fingerprint=child.fingerprint,
            diff=diff(root, child),
            status=Status.keep,
            metric=0.5,
            source=source,
        )
    )
    return kid


def test_only_this_swarms_lineages_are_rebuilt_for_running(tmp_path, store):
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    mine = _chain(store, root, set_knobs(root, {"LR": 0.2}), swarm_id="me")
    other = _chain(store, root, set_knobs(root, {"LR": 0.3}), swarm_id="another-swarm")
    packed = _chain(store, root, set_knobs(root, {"LR": 0.4}), swarm_id=None, source="pack:x")

    library = ProgramLibrary(store, root, "me")
    rebuilt = library.for_trace(mine)
    assert rebuilt is not None and rebuilt.fingerprint == mine.fingerprint
    assert library.for_trace(other) is None, "another swarm's program is evidence only"
    assert library.for_trace(packed) is None, "an imported program is evidence only"

    # the explicit review path (--start-from) rebuilds any lineage, to show it first
    shown = rebuild_for_review(store, root, packed.id)
    assert shown.fingerprint == packed.fingerprint and "LR = 0.4" in shown.get("train.py")
    with pytest.raises(LineageError, match="no trace"):
        rebuild_for_review(store, root, "no-such-trace")
