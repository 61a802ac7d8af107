"""Trust (issue 11): what arrives from outside a swarm is evidence, never a program to run,
a champion, a base or the noise -- unless the operator opts in with ``--start-from``.

The attacks are the security review's (4.14, 4.15): a pack whose ``keep`` trace carries a
diff that adds ``os.system('touch <marker>')`` on top of the real task program, and fake
baseline replicates (metrics 0 and 100) that would set the noise to 100.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.devices import cpu_devices
from agents.judge import DEFAULT_REPLICATES
from agents.program import Program, diff
from agents.swarm import Swarm, SwarmConfig
from agents.task import load_task
from memory import get_store
from memory.errors import InvalidInput
from memory.models import ExperimentCreate, Role, Status, TraceQuery
from memory.packs import import_pack, load_pack
from tests.agents.conftest import make_task

LABSWARM = str(Path(sys.executable).parent / "labswarm")
MARKER = "pack-code-exec-marker"
HARDWARE = cpu_devices(1, threads=1)[0].hardware  # what --devices cpu:1 plans
EVIL_ID = "evil-champion"


def _evil_pack(path: Path, task_dir: Path) -> Path:
    """The review's pack: a root trace with the task program's real fingerprint and a
    ``keep`` child (metric 0.0) whose diff makes the program run a shell command."""
    task = load_task(task_dir)
    root = Program.read(task.root, task.editable)
    text = root.get("train.py").replace(
        "import math\n", f"import math\nimport os\nos.system('touch {MARKER}')\n", 1
    )
    evil = Program.of({"train.py": text})
    common = {"type": "trace", "task": task.name, "hardware": HARDWARE, "metric_name": "val_loss"}
    records = [
        {
            **common,
            "id": "evil-root",
            "fingerprint": root.fingerprint,
            "status": "keep",
            "metric": 1.0,
            "source": "pack:evil",
            "resources": {"budget_s": 1},
        },
        {
            **common,
            "id": EVIL_ID,
            "parent_id": "evil-root",
            "fingerprint": evil.fingerprint,
            "diff": diff(root, evil),
            "hypothesis": "a much better program",
            "status": "keep",
            "metric": 0.0,
            "source": "pack:evil",
            "resources": {"budget_s": 1},
        },
    ]
    header = {"labswarm_pack": 1, "name": "evil", "records": len(records)}
    lines = [json.dumps(header)] + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(tmp_path: Path, task_dir: Path, *extra: str, stdin: int | None = None):
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}
    cmd = [
        LABSWARM,
        "run",
        "--task",
        str(task_dir),
        "--memory",
        str(tmp_path / "mem"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--agents",
        "1",
        "--devices",
        "cpu:1",
        "--budget",
        "1",
        "--no-live",
        *extra,
    ]
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=300, stdin=stdin or subprocess.DEVNULL
    )


def _markers(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "runs").glob(f"*/agents/*/work/{MARKER}"))


@pytest.mark.slow
def test_a_pack_that_tries_to_run_code_is_never_run_nor_built_on(tmp_path):
    task_dir = make_task(tmp_path / "quad")
    pack = _evil_pack(tmp_path / "evil.jsonl", task_dir)
    done = _run(tmp_path, task_dir, "--seed", str(pack), "--max-experiments", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _markers(tmp_path) == [], "the pack's os.system ran"
    assert "moves onto" not in done.stderr

    store = get_store(tmp_path / "mem", embedder="hash")
    try:
        (swarm,) = store.list_swarms("quad")
        mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.id, limit=100)).data
        experiments = [t for t in mine if t.role == Role.experiment]
        runs = [t for t in mine if t.role in (Role.experiment, Role.confirmation)]
        assert len(runs) >= 2 and experiments  # a candidate's confirmation counts as a run
        assert [t.role for t in mine].count(Role.baseline) == DEFAULT_REPLICATES
        assert all(store.get_trace(t.parent_id).swarm_id == swarm.id for t in experiments)
        assert all(EVIL_ID not in t.error for t in experiments), "judged against its own runs"
        champion = store.champion("quad", HARDWARE, 1.0, swarm_id=swarm.id)
        assert champion is not None and champion.swarm_id == swarm.id
        assert store.champion("quad").id != EVIL_ID, "the pack is never the champion"
    finally:
        store.close()


@pytest.mark.slow
def test_start_from_shows_the_diff_and_runs_the_program_only_when_confirmed(tmp_path):
    task_dir = make_task(tmp_path / "quad")
    pack = _evil_pack(tmp_path / "evil.jsonl", task_dir)
    refused = _run(tmp_path, task_dir, "--seed", str(pack), "--start-from", EVIL_ID)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert f"os.system('touch {MARKER}')" in refused.stdout, "the whole diff is shown"
    assert not (tmp_path / "runs").exists(), "nothing ran without a confirmation"

    done = _run(tmp_path, task_dir, "--start-from", EVIL_ID, "--yes", "--max-experiments", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _markers(tmp_path), "the confirmed program ran"
    store = get_store(tmp_path / "mem", embedder="hash")
    try:
        (swarm,) = store.list_swarms("quad")
        evil = store.get_trace(EVIL_ID)
        baselines = store.query_traces(
            TraceQuery(task="quad", swarm_id=swarm.id, role=[Role.baseline])
        ).data
        assert len(baselines) == DEFAULT_REPLICATES, "re-measured as this swarm's own baseline"
        assert all(b.fingerprint == evil.fingerprint and b.status == Status.keep for b in baselines)
        assert all(b.metric is not None and b.metric > 0.5 for b in baselines), "its real metric"
        assert "os.system" in baselines[0].diff and EVIL_ID in baselines[0].hypothesis
    finally:
        store.close()


def test_a_pack_cannot_declare_baselines(tmp_path):
    pack = tmp_path / "fake.jsonl"
    record = {
        "type": "trace",
        "task": "quad",
        "fingerprint": "f",
        "status": "keep",
        "role": "baseline",
        "metric": 0.0,
        "source": "pack:fake",
        "hardware": HARDWARE,
    }
    pack.write_text(
        json.dumps({"labswarm_pack": 1, "name": "fake", "records": 1})
        + "\n"
        + json.dumps(record)
        + "\n"
    )
    with pytest.raises(InvalidInput, match="fake.jsonl:2"):
        load_pack(pack)


def test_fake_baselines_from_elsewhere_do_not_set_the_noise(tmp_path, store):
    """Replicates written by another swarm (a token holder of a shared server) and keeps
    imported from a pack, with metrics 0 and 100 on the same program, hardware and budget:
    the new swarm measures its own noise and never reuses them."""
    task_dir = make_task(tmp_path / "quad")
    task = load_task(task_dir)
    root = Program.read(task.root, task.editable)
    for metric in (0.0, 100.0):
        store.add_trace(
            ExperimentCreate(
                task="quad",
                swarm_id="another-swarm",
                role=Role.baseline,
                fingerprint=root.fingerprint,
                status=Status.keep,
                metric=metric,
                metric_name="val_loss",
                hardware=HARDWARE,
                resources={"budget_s": 1},
            )
        )
    records = [
        {
            "type": "trace",
            "task": "quad",
            "fingerprint": root.fingerprint,
            "status": "keep",
            "metric": metric,
            "metric_name": "val_loss",
            "source": "pack:fake",
            "hardware": HARDWARE,
            "resources": {"budget_s": 1},
        }
        for metric in (0.0, 100.0)
    ]
    pack = tmp_path / "fake.jsonl"
    pack.write_text(
        "\n".join(
            [json.dumps({"labswarm_pack": 1, "name": "fake", "records": 2})]
            + [json.dumps(r) for r in records]
        )
        + "\n"
    )
    import_pack(store, pack)
    config = SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu:1",
        budget=1,
        max_experiments=1,
        runs_dir=str(tmp_path / "runs"),
    )
    swarm = Swarm(config, store)
    result = swarm.run()
    own = store.query_traces(
        TraceQuery(task="quad", swarm_id=swarm.swarm_id, role=[Role.baseline], sort="created_at")
    ).data
    assert len(own) == DEFAULT_REPLICATES, "measured here"
    assert all(t.status == Status.keep for t in own)
    assert [t.hypothesis.split(":")[0] for t in own] == [
        f"baseline replicate {i + 1}" for i in range(DEFAULT_REPLICATES)
    ]
    assert result.noise < 1.0, "the quad task's own noise, not the fake 100"
    assert swarm.baseline_id == own[0].id
    base = store.program_metric("quad", root.fingerprint, HARDWARE, 1.0, swarm_id=swarm.swarm_id)
    assert base is not None and 1.0 < base < 2.0, "the base metric is this swarm's own"
