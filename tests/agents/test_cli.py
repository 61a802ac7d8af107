"""``labswarm run``: fast help, clear errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.judge import DEFAULT_REPLICATES
from memory import get_store
from memory.models import Role, TraceQuery
from tests.agents.conftest import make_task

LABSWARM = str(Path(sys.executable).parent / "labswarm")


def test_run_module_imports_nothing_heavy():
    code = (
        "import sys, agents.cli.run\n"
        "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'optuna', "
        "'langgraph', 'transformers') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_help_lists_every_flag():
    out = subprocess.run([LABSWARM, "run", "--help"], capture_output=True, text=True, check=True)
    for flag in (
        "--task",
        "--agents",
        "--devices",
        "--budget",
        "--max-experiments",
        "--hours",
        "--proposer",
        "--model",
        "--base-url",
        "--memory",
        "--seed",
        "--resume",
        "--sampler-seed",
        "--start-from",
        "--yes",
        "--replicates",
        "--finalists",
        "--finalists-by",
    ):
        assert flag in out.stdout


@pytest.mark.parametrize(
    ("space", "field"),
    [("", "metric.direction"), ("[space.WIDTH]\nlow = 4.0\nhigh = 64.0\n", "space.WIDTH.low")],
)
def test_bad_task_toml_fails_with_the_field_and_leaves_memory_empty(tmp_path, space, field):
    """A bad field (``space``: a declared range that does not fit its knob, checked when the
    swarm starts) is an error naming the file and the field; nothing runs."""
    task = make_task(tmp_path / "t", extra=space)
    toml = task / "task.toml"
    if not space:
        toml.write_text(toml.read_text().replace('direction = "minimize"', 'direction = "lower"'))
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}
    out = subprocess.run(
        [
            LABSWARM,
            "run",
            "--task",
            str(task),
            "--memory",
            str(tmp_path / "mem"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-live",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert f"field '{field}'" in out.stderr and str(toml) in out.stderr
    assert not any((tmp_path / "runs").glob("*/agents/*/logs/*")), "a run started"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget", "-3"], "argument --budget: must be positive"),
        (["--replicates", "1"], "argument --replicates: must be at least 2"),
        (["--replicates", "1"], "the noise is the spread of repeated runs"),
        (["--max-experiments", "zero"], "not a number: 'zero'"),
        (["--yes"], "--yes only confirms a --start-from diff"),
        (["--screen", "-1"], "--screen: must be a finite number of noise sds"),
        (["--moves", "sideways"], "argument --moves: invalid choice: 'sideways'"),
        (["--remeasure", "-1"], "argument --remeasure: must be at least 0"),
        (["--short-budget", "0"], "argument --short-budget: must be positive"),
        (["--promote", "1.5"], "argument --promote: a fraction lies in (0, 1]"),
        (["--finalists", "-1"], "argument --finalists: must be at least 0"),
        (["--finalists-by", "luck"], "argument --finalists-by: invalid choice: 'luck'"),
        (["--sampler-seed", "-1"], "--sampler-seed: must be in 0..3999999, got -1"),
        (["--sampler-seed", "3", "--resume"], "--sampler-seed: a resumed swarm goes on"),
        (["--model-timeout", "0"], "--model-timeout: must be a finite number of seconds > 0"),
        (["--model-timeout", "nan"], "--model-timeout: must be a finite number of seconds > 0"),
    ],
)
def test_a_bad_flag_is_a_usage_error_naming_it(tmp_path, capsys, flags, message):
    """Refused by the parser (exit 2) before anything is opened; in-process, as the console
    script calls ``agents.cli.main`` (the subprocess test below covers the script)."""
    from agents.cli import main

    argv = ["run", "--memory", str(tmp_path / "m"), "--runs-dir", str(tmp_path / "r"), *flags]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_bad_flags_are_refused_with_a_message(tmp_path):
    """Through the installed console script: exit codes and messages as a user sees them."""

    def run(*flags: str) -> subprocess.CompletedProcess:
        cmd = [LABSWARM, "run", "--memory", str(tmp_path / "m"), "--runs-dir", str(tmp_path / "r")]
        return subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=120)

    out = run("--budget", "-3")
    assert out.returncode == 2 and "argument --budget: must be positive" in out.stderr
    out = run("--devices", "tpu")
    assert out.returncode == 1 and "'tpu' is not a GPU index" in out.stderr
    # a short budget is checked against the swarm's budget (the quick swarm's 20 s here)
    out = run("--short-budget", "30", "--no-live")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: short_budget: 30 s must be above 0 and below the swarm's budget" in out.stderr
    assert not any((tmp_path / "r").glob("*")), "no swarm was started"


def test_labswarm_memory_is_where_run_writes(tmp_path):
    """``LABSWARM_MEMORY`` names the store when ``--memory`` is not given."""
    landscape = Path(__file__).resolve().parents[2] / "benchmarks" / "landscape"
    mem = tmp_path / "from-env"
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash", "LABSWARM_MEMORY": str(mem)}
    cmd = [
        LABSWARM,
        "run",
        "--task",
        str(landscape),
        "--max-experiments",
        "2",
        "--agents",
        "1",
        "--devices",
        "cpu:1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-live",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (tmp_path / ".labswarm").exists(), "not the default store"
    store = get_store(mem, embedder="hash")
    try:
        traces = store.query_traces(TraceQuery(task="trainer-landscape", limit=100)).data
        assert len([t for t in traces if t.role == Role.baseline]) == DEFAULT_REPLICATES
        # the limit is checked before each new idea: the second idea is proposed only
        # when the first one's verdict took one run (a candidate's confirmation counts)
        experiments = [t for t in traces if t.role == Role.experiment]
        runs = [t for t in traces if t.role in (Role.experiment, Role.confirmation)]
        assert len(experiments) in (1, 2) and len(runs) >= 2
        if len(experiments) == 1:
            assert any(t.role == Role.confirmation for t in runs), (
                "one idea, one run: stopped early"
            )
    finally:
        store.close()


ONE_BOOL = """\
FLAG = False

print("---")
print("val_loss:", 0.9 if FLAG else 1.0)
"""


def test_a_swarm_with_nothing_to_run_says_why_and_fails(tmp_path):
    task = make_task(tmp_path / "t", ONE_BOOL, name="one-bool", noise_min=0.01)
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}
    cmd = [
        LABSWARM,
        "run",
        "--task",
        str(task),
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
        "--max-experiments",
        "2",
        "--no-live",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert first.returncode == 0, first.stderr[-2000:]  # FLAG = True ran
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert again.returncode == 1
    assert "agent-0 stopped: search exhausted" in again.stderr
    assert "no experiment run" in again.stderr


def test_seed_pack_is_imported_before_a_short_swarm(tmp_path):
    pack = Path(__file__).resolve().parents[2] / "seeds" / "autoresearch-community.jsonl"
    task = make_task(tmp_path / "t")
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}
    cmd = [
        LABSWARM,
        "run",
        "--task",
        str(task),
        "--memory",
        str(tmp_path / "mem"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--agents",
        "1",
        "--devices",
        "cpu",
        "--budget",
        "1",
        "--max-experiments",
        "1",
        "--seed",
        str(pack),
        "--no-live",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    text = " ".join(out.stdout.split())  # the console wraps long lines
    assert "seeded from" in text and "40 findings" in text
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert again.returncode == 0
    assert "0 findings (40 already present)" in " ".join(again.stdout.split())
    (swarm_dir, _) = sorted((tmp_path / "runs").iterdir())
    assert (swarm_dir / "results.tsv").exists()


def test_each_new_swarm_draws_its_own_sampler_seed_and_the_flag_repeats_one(tmp_path):
    """Two swarms on two empty memories propose different first configurations (each draws
    its own seed, shown at its end and saved in swarm.json); the first one's seed given to
    a third swarm on a third empty memory proposes what the first proposed."""
    import json

    task = make_task(tmp_path / "t")
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}

    def swarm(name: str, *flags: str) -> tuple[int, str]:
        cmd = [LABSWARM, "run", "--task", str(task), "--memory", str(tmp_path / name)]
        cmd += ["--runs-dir", str(tmp_path / f"runs-{name}"), "--agents", "1"]
        cmd += ["--devices", "cpu:1", "--budget", "1", "--max-experiments", "1", "--no-live"]
        out = subprocess.run([*cmd, *flags], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        (meta,) = (tmp_path / f"runs-{name}").glob("*/swarm.json")
        seed = json.loads(meta.read_text(encoding="utf-8"))["config"]["seed"]
        assert f"(sampler seed {seed})" in " ".join(out.stdout.split())
        store = get_store(tmp_path / name, embedder="hash")
        try:
            traces = store.query_traces(TraceQuery(task="quad", limit=100)).data
        finally:
            store.close()
        first = min((t for t in traces if t.role == Role.experiment), key=lambda t: t.created_at)
        return seed, first.fingerprint

    seed_a, first_a = swarm("a")
    seed_b, first_b = swarm("b")
    assert seed_a != seed_b and first_a != first_b
    assert swarm("c", "--sampler-seed", str(seed_a)) == (seed_a, first_a)


def test_the_model_timeout_reaches_the_server_s_client_and_a_resume_may_change_it(tmp_path):
    """``--model-timeout`` is how long the OpenAI client waits for one answer; a resumed
    swarm waits as long as it is now asked to (its saved config may predate the setting)."""
    import json
    from dataclasses import asdict

    from agents.proposers.llm import make_chat_model
    from agents.swarm import SwarmConfig, SwarmHome

    chat = make_chat_model("served", "http://127.0.0.1:9/v1", timeout_s=42.0)
    assert chat.request_timeout == 42.0  # type: ignore[attr-defined]
    assert make_chat_model("served", "http://127.0.0.1:9/v1").request_timeout is None  # type: ignore[attr-defined]
    runs = tmp_path / "runs"
    (runs / "old").mkdir(parents=True)
    saved = asdict(SwarmConfig(proposer="llm", model="served", base_url="http://h/v1"))
    del saved["model_timeout_s"]
    (runs / "old" / "swarm.json").write_text(json.dumps({"swarm_id": "old", "config": saved}))
    home = SwarmHome.open(SwarmConfig(runs_dir=str(runs), model_timeout_s=42.0), "old")
    assert home.config.model_timeout_s == 42.0 and home.config.model == "served"
