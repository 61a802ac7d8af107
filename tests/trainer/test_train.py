"""Real training runs of train.py, small budgets, one CPU thread, as the runner starts them."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.trainer.runs import copy_task, run_train, set_knobs
from trainer import TASK_DIR

pytestmark = pytest.mark.slow

OURS = {"agents", "memory", "server", "trainer", "labswarm", "seeds"}
SUMMARY_KEYS = {
    "val_bpb",
    "training_seconds",
    "total_seconds",
    "peak_memory_mb",
    "total_tokens_M",
    "num_steps",
    "num_params_M",
    "device",
}


def test_a_copy_of_the_task_trains_and_prints_a_summary(tmp_path: Path, cache_dir: Path) -> None:
    task = copy_task(tmp_path / "elsewhere" / "task")
    budget = 8.0
    run = run_train(task, budget, cache_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.summary()
    assert SUMMARY_KEYS <= summary.keys()
    assert next(iter(summary)) == "val_bpb"
    val_bpb = float(summary["val_bpb"])
    assert 0 < val_bpb < 6.0  # uniform guessing is 8.0 bits per byte
    training = float(summary["training_seconds"])
    # The loop stops on the first step that reaches the budget: at most one step over.
    last_step_ms = int(re.findall(r"\| (\d+) ms \|", run.stdout)[-1])
    assert budget <= training <= budget + last_step_ms / 1000 + 0.1
    assert training <= budget + 10.0  # a sanity bound even on a crowded machine
    assert float(summary["total_seconds"]) >= training
    assert int(summary["num_steps"]) > 2
    assert float(summary["total_tokens_M"]) > 0
    assert float(summary["num_params_M"]) > 0.1
    assert float(summary["peak_memory_mb"]) > 0
    assert summary["device"] == "cpu"
    assert "mfu_percent" not in summary  # GPU only
    # Nothing was written into the task directory but bytecode.
    written = {p.name for p in task.rglob("*") if p.is_file()} - {
        p.name for p in TASK_DIR.rglob("*") if p.is_file()
    }
    assert not {n for n in written if not n.endswith(".pyc")}


def test_task_files_import_nothing_of_labswarm() -> None:
    for name in ("train.py", "prepare.py"):
        tree = ast.parse((TASK_DIR / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]} if node.level == 0 else {"<relative>"}
            else:
                continue
            assert not roots & (OURS | {"<relative>"}), f"{name}:{node.lineno} imports {roots}"
            for root in roots - {"prepare"}:
                assert root in sys.stdlib_module_names or root in {
                    "torch",
                    "numpy",
                    "pyarrow",
                    "rustbpe",
                    "tiktoken",
                }, f"{name}:{node.lineno} imports {root}"


def test_an_absurd_learning_rate_diverges_with_exit_1_and_no_summary(
    tmp_path: Path, cache_dir: Path
) -> None:
    task = copy_task(tmp_path / "task")
    set_knobs(task / "train.py", MATRIX_LR=1e4, EMBED_LR=1e4, HEAD_LR=1e4)
    budget = 30.0
    run = run_train(task, budget, cache_dir)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "---" not in run.stdout.splitlines()
    assert "val_bpb" not in run.stdout
    # Stopped at once: within the first steps, not at the end of the budget.
    failed_at = re.search(r"at step (\d+): diverged", run.stderr)
    assert failed_at and int(failed_at.group(1)) < 10, run.stderr[-2000:]


def test_a_bad_corpus_path_fails_naming_the_path(tmp_path: Path, cache_dir: Path) -> None:
    missing = tmp_path / "no-such-corpus"
    run = run_train(TASK_DIR, 5.0, cache_dir, {"LABSWARM_CORPUS": str(missing)})
    assert run.returncode == 2
    assert str(missing) in run.stderr
    assert "---" not in run.stdout.splitlines()


def test_a_parquet_corpus_with_the_bpe_tokenizer_trains(tmp_path: Path, cache_dir: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer import prepare

    shards = tmp_path / "shards"
    shards.mkdir()
    works = prepare.load_embedded().train
    for i in range(2):
        rows = [text for _, text in works[i * 6 : i * 6 + 6]]
        pq.write_table(pa.table({"text": rows}), shards / f"shard_{i:05d}.parquet")
    task = copy_task(tmp_path / "task")
    set_knobs(task / "train.py", TOKENIZER_CPU="bpe", BPE_VOCAB_SIZE=512)
    run = run_train(task, 3.0, cache_dir, {"LABSWARM_CORPUS": str(shards)})
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.summary()
    assert summary["tokenizer"] == "bpe512"
    assert 0 < float(summary["val_bpb"]) < 8.0
    assert "parquet shards in" in run.stdout
    assert len(list(cache_dir.glob("bpe-*-512.json"))) == 1
    assert len(list(cache_dir.glob("tokens-*-bpe512-train.npy"))) == 1
