"""The built-in trainer through the runner: its protected ``evaluate_bpb`` reports the metric
to ``$LABSWARM_RESULT``, and a model that looks ahead is stopped and the run is invalid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agents.devices import cpu_devices
from agents.runner import result_path, run_program
from agents.task import load_task
from tests.trainer.runs import copy_task, edited_task, write_small_corpus

pytestmark = pytest.mark.slow

DEV = cpu_devices(1, threads=1)[0]
BUDGET = 2.0  # seconds of training: enough steps for attention to carry information


@pytest.fixture
def small_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small corpus as ``LABSWARM_CORPUS`` (``runs.write_small_corpus``)."""
    root = write_small_corpus(tmp_path / "corpus")
    monkeypatch.setenv("LABSWARM_CORPUS", str(root))
    return root


def test_the_trainer_passes_the_causality_check_and_its_harness_value_is_the_metric(
    tmp_path: Path,
) -> None:
    task = load_task(copy_task(tmp_path / "task"))
    assert task.metric_harness
    r = run_program(task, task.root, DEV, BUDGET, tmp_path / "logs" / "ok.log", seed=4242)
    assert r.status == "ok" and not r.invalid, r.error + r.log_tail
    (line,) = result_path(task.root, "ok").read_text().splitlines()
    entry = json.loads(line)
    assert entry == {"metric": "val_bpb", "value": r.metric}
    assert r.seed == 4242
    assert f"{r.metric:.6f}" == f"{r.summary['val_bpb']:.6f}"
    assert r.metric is not None and 0 < r.metric < 8.5


def test_a_model_that_looks_ahead_is_stopped_and_the_run_invalid(
    tmp_path: Path, small_corpus: Path
) -> None:
    task = load_task(edited_task(tmp_path / "task", ("is_causal=True,", "is_causal=False,")))
    r = run_program(task, task.root, DEV, 1.0, tmp_path / "logs" / "leak.log", seed=1)
    assert r.returncode == 1 and r.status == "crash" and r.metric is None, r.log_tail
    assert r.invalid.startswith("non-causal: predictions at position"), r.invalid
    assert "NonCausalError" in r.log_tail
    assert "---" not in r.log_tail.splitlines(), "no summary after a failed check"


def test_the_seed_sets_the_initial_weights_and_batches(tmp_path: Path, small_corpus: Path) -> None:
    """The loss of the first step depends only on the initial weights and the first batch:
    the same LABSWARM_SEED repeats it, another seed changes it."""
    task = load_task(copy_task(tmp_path / "task"))
    first: list[str] = []
    for i, seed in enumerate([5, 5, 6]):
        log = tmp_path / "logs" / f"seed-{i}.log"
        r = run_program(task, task.root, DEV, 0.5, log, seed=seed)
        assert r.status == "ok" and r.seed == seed, r.error + r.log_tail
        first.append(re.findall(r"^step 00001 .*\| loss (\S+) \|", log.read_text(), re.M)[0])
    assert first[0] == first[1] != first[2]
