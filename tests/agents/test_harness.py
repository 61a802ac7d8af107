"""Seeds and the harness-written metric: every run gets its own ``LABSWARM_SEED``; a task
whose protected evaluator reports to ``$LABSWARM_RESULT`` gets its metric from there, and a
run that prints another value, a second summary or no evaluation at all is invalid."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from agents.devices import cpu_devices
from agents.execute import Bench
from agents.program import Program
from agents.runner import (
    PRIVATE_DIR,
    RESULT_ENV,
    SEED_ENV,
    harness_verdict,
    result_path,
    run_env,
    run_program,
    run_seed,
    summary_blocks,
)
from agents.task import load_task
from agents.workspace import Workspace, protected_hashes
from tests.agents.conftest import make_harness_task, make_task

DEV = cpu_devices(1, threads=1)[0]
REPO = Path(__file__).resolve().parents[2]

SEED_PRINTER = """\
import os
print("---")
print("val_loss: 0.5")
print("seed:", os.environ.get("LABSWARM_SEED", "unset"))
print("result:", os.environ.get("LABSWARM_RESULT", "unset"))
"""


def _harness_task(root: Path, train: str):
    task = load_task(make_harness_task(root, train))
    assert task.metric_harness
    return task


def _run(task, tmp_path: Path, name: str = "run", **kw):
    return run_program(task, task.root, DEV, 3, tmp_path / "logs" / f"{name}.log", **kw)


# ---------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------


def test_run_seed_is_a_31_bit_function_of_the_trace_id():
    seeds = {run_seed(f"trace-{i}") for i in range(200)}
    assert len(seeds) == 200, "distinct per run"
    assert all(0 <= s <= 2**31 - 1 for s in seeds)
    assert run_seed("abc") == run_seed("abc")
    assert run_seed("abc") == int("ba7816bf", 16) & 0x7FFFFFFF  # sha256("abc") starts ba7816bf


def test_each_run_gets_its_seed_and_records_it(tmp_path):
    task = load_task(make_task(tmp_path / "t", SEED_PRINTER))
    a = _run(task, tmp_path, "a", seed=run_seed("a"))
    b = _run(task, tmp_path, "b", seed=run_seed("b"))
    assert a.status == b.status == "ok"
    assert a.summary["seed"] == run_seed("a") and a.seed == run_seed("a")
    assert b.summary["seed"] == run_seed("b") and b.seed == run_seed("b")
    assert a.seed != b.seed
    none = _run(task, tmp_path, "c")
    assert none.summary["seed"] == "unset" and none.seed is None
    # The result file is named for every run (read only when the task declares a harness).
    expected = result_path(task.root, "a")
    assert expected == task.root.resolve() / PRIVATE_DIR / "result-a.json"
    assert a.summary["result"] == str(expected).replace(str(task.root.resolve()), "<workspace>")


def test_the_seed_and_result_variables_cannot_be_set_by_the_task(tmp_path):
    root = make_task(tmp_path / "t", extra='[env]\nLABSWARM_SEED = "1"\nLABSWARM_RESULT = "x"\n')
    env = run_env(load_task(root), DEV, 5, seed=42, result_file=tmp_path / "r.json")
    assert env[SEED_ENV] == "42" and env[RESULT_ENV] == str(tmp_path / "r.json")
    setup_like = run_env(load_task(root), DEV, 5)  # a set-up step: neither is labswarm's
    assert setup_like[SEED_ENV] == "1" and setup_like[RESULT_ENV] == "x"


def test_a_bench_gives_every_log_name_its_own_seed(tmp_path):
    task = load_task(make_task(tmp_path / "quad", SEED_PRINTER))
    bench = Bench(
        task=task,
        workspace=Workspace(task, tmp_path / "work"),
        device=DEV,
        budget=1,
        logs_dir=tmp_path / "logs",
        home=tmp_path,
        expected=protected_hashes(task),
        stop=threading.Event(),
    )
    program = Program.read(task.root, task.editable)
    first = bench.execute(program, "trace-1").result
    second = bench.execute(program, "trace-2").result
    chosen = bench.execute(program, "trace-3", seed=7).result
    assert first.seed == run_seed("trace-1") == first.summary["seed"]
    assert second.seed == run_seed("trace-2") != first.seed
    assert chosen.seed == 7 == chosen.summary["seed"]


def test_the_landscape_noise_follows_the_run_seed(tmp_path):
    """Two runs of one configuration with different seeds differ; the same seed repeats,
    in any directory (the workspace path takes no part once a seed is given)."""
    values: dict[str, list[float | None]] = {}
    for name in ("landscape", "landscape-flat"):
        src = REPO / "benchmarks" / name
        runs = []
        for i, seed in enumerate([11, 11, 12]):
            work = tmp_path / f"{name}-{i}"
            shutil.copytree(src, work)  # links followed, as a workspace copies them
            task = load_task(work)
            r = run_program(task, work, DEV, 3, tmp_path / f"{name}-{i}.log", seed=seed)
            assert r.status == "ok", r.error
            runs.append(r.metric)
        values[name] = runs
    for a, b, c in values.values():
        assert a == b and a != c


# ---------------------------------------------------------------------------
# One summary block
# ---------------------------------------------------------------------------


def test_summary_blocks_count_only_blocks_that_carry_the_metric():
    text = "---\nval_loss: 1\n---\nother: 2\n---\nval_loss: 3\nval_loss: 4\n"
    assert summary_blocks(text, "val_loss") == 2
    assert summary_blocks("val_loss: 1\n---\nnote: x\n", "val_loss") == 0
    assert summary_blocks("log\n---\nval_loss: 0.5\n", "val_loss") == 1


def test_a_fake_summary_after_the_real_one_is_invalid(tmp_path):
    task = load_task(
        make_task(
            tmp_path / "t",
            "print('---')\nprint('val_loss: 0.9')\nprint('---')\nprint('val_loss: 0.001')\n",
        )
    )
    r = _run(task, tmp_path)
    assert r.status == "crash" and r.metric is None
    assert r.invalid.startswith("the output holds 2 summary blocks")
    assert "0.001" in r.invalid and r.error == r.invalid


def test_a_later_block_without_the_metric_is_not_a_second_summary(tmp_path):
    task = load_task(
        make_task(tmp_path / "t", "print('---')\nprint('val_loss: 0.9')\nprint('peak: 3')\n")
    )
    r = _run(task, tmp_path)
    assert r.status == "ok" and r.metric == 0.9 and not r.invalid


# ---------------------------------------------------------------------------
# The harness-written metric
# ---------------------------------------------------------------------------


def test_the_harness_value_is_the_metric(tmp_path):
    # Printed with 6 decimals, the harness holds the full value: the harness wins.
    task = _harness_task(
        tmp_path / "t",
        "import prepare\nv = prepare.evaluate(0.123456789)\nprint('---')\n"
        "print(f'val_loss: {v:.6f}')\n",
    )
    r = _run(task, tmp_path, "ok", seed=5)
    assert r.status == "ok" and not r.invalid, r.error
    assert r.metric == 0.123456789 and r.summary["val_loss"] == 0.123457
    lines = result_path(task.root, "ok").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"metric": "val_loss", "value": 0.123456789}]


def test_a_printed_value_the_harness_did_not_produce_is_invalid(tmp_path):
    task = _harness_task(
        tmp_path / "t",
        "import prepare\nprepare.evaluate(0.8)\nprint('---')\nprint('val_loss: 0.2')\n",
    )
    r = _run(task, tmp_path)
    assert r.status == "crash" and r.metric is None
    assert r.invalid == "printed val_loss 0.2 disagrees with the protected evaluation's 0.8"


def test_harness_declared_but_no_result_is_invalid(tmp_path):
    task = _harness_task(tmp_path / "t", "print('---')\nprint('val_loss: 0.2')\n")
    stale = result_path(task.root, "run")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(json.dumps({"metric": "val_loss", "value": 0.2}) + "\n")
    r = _run(task, tmp_path)  # a file left from an earlier run of that name does not count
    assert r.status == "crash" and r.metric is None
    assert r.invalid.startswith("the protected evaluation wrote no result")


def test_two_evaluations_or_two_summaries_are_invalid(tmp_path):
    twice = _harness_task(
        tmp_path / "a",
        "import prepare\nprepare.evaluate(0.9)\nv = prepare.evaluate(0.3)\n"
        "print('---')\nprint(f'val_loss: {v}')\n",
    )
    r = _run(twice, tmp_path, "twice")
    assert r.metric is None and r.invalid.startswith("the protected evaluation ran 2 times")
    blocks = _harness_task(
        tmp_path / "b",
        "import prepare\nv = prepare.evaluate(0.3)\nprint('---')\nprint(f'val_loss: {v}')\n"
        "print('---')\nprint(f'val_loss: {v}')\n",
    )
    r = _run(blocks, tmp_path, "blocks")
    assert r.metric is None and r.invalid.startswith("the output holds 2 summary blocks")


def test_an_error_line_is_invalid_with_its_text_even_after_a_crash(tmp_path):
    task = _harness_task(
        tmp_path / "t",
        "import json, os, sys\n"
        "open(os.environ['LABSWARM_RESULT'], 'a').write(json.dumps("
        "{'metric': 'val_loss', 'error': 'non-causal: position 3 saw the future'}) + '\\n')\n"
        "sys.exit('non-causal model')\n",
    )
    r = _run(task, tmp_path)
    assert r.returncode == 1 and r.status == "crash" and r.metric is None
    assert r.invalid == "non-causal: position 3 saw the future" == r.error


def test_a_malformed_result_line_is_invalid(tmp_path):
    task = _harness_task(
        tmp_path / "t",
        "import os\nopen(os.environ['LABSWARM_RESULT'], 'a').write('val_loss=0.1\\n')\n"
        "print('---')\nprint('val_loss: 0.1')\n",
    )
    r = _run(task, tmp_path)
    assert r.metric is None and "line 1 is not a result line" in r.invalid


def test_without_a_harness_the_result_file_is_not_read(tmp_path):
    task = load_task(
        make_task(
            tmp_path / "t",
            "import json, os\nopen(os.environ['LABSWARM_RESULT'], 'a').write(json.dumps("
            "{'metric': 'val_loss', 'value': 9.0}) + '\\n')\n"
            "print('---')\nprint('val_loss: 0.2')\n",
        )
    )
    r = _run(task, tmp_path)
    assert r.status == "ok" and r.metric == 0.2 and not r.invalid


def test_the_harness_verdict_rules_on_their_own():
    ok = [{"metric": "m", "value": 2.0000004}]
    assert harness_verdict("m", 2.0, ok) == (2.0000004, "")  # within abs 1e-6
    assert harness_verdict("m", 1000.0, [{"metric": "m", "value": 1000.009}])[0] == 1000.009
    assert harness_verdict("m", 1000.0, [{"metric": "m", "value": 1000.02}])[0] is None
    assert "reported 'other'" in harness_verdict("m", 2.0, [{"metric": "other", "value": 2.0}])[1]
    assert "not a number" in harness_verdict("m", 2.0, [{"metric": "m", "value": "2"}])[1]
    assert harness_verdict("m", 2.0, [{"metric": "m", "error": "bad"}, *ok]) == (None, "bad")
