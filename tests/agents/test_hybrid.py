"""The hybrid proposer: K builtin proposals per LLM proposal, per agent, decided from
memory (so a resume keeps the rhythm); each trace records who proposed it. The alternation
with a scripted LLM side (fast) and with the real local SmolLM2 model (the plumbing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.devices import cpu_devices
from agents.program import Program
from agents.proposers.base import Proposal, ProposalInvalid, ProposalRequest, Proposer
from agents.proposers.builtin import BuiltinProposer
from agents.proposers.hybrid import BUILTIN, DEFAULT_RATIO, LLM, HybridProposer, turn
from agents.proposers.llm import LLMProposer, make_chat_model
from agents.swarm import Swarm, SwarmConfig, SwarmError, default_proposer_factory, recorded_space
from agents.task import load_task
from memory.models import RAN_STATUSES, ExperimentPublic, Role, Status, TraceQuery
from tests.agents.conftest import edit_proposal, make_task, smollm2_gguf
from tests.backends import free_port

LABSWARM = str(Path(sys.executable).parent / "labswarm")
MARK = 'print("training...")'
# a noise floor far above any gain of the quad task: nothing is kept, suspect or re-run, so
# each proposal is exactly one run or one refusal and the swarm's limits stop it exactly
NO_KEEPS = 100.0


class ScriptedLLM(Proposer):
    """The LLM side of a hybrid without a model: an unusable answer first (if
    ``invalid_first``), then structural changes (a new line of output each time, no knob
    touched). Keeps every request."""

    name = "scripted-llm"

    def __init__(self, invalid_first: bool = True) -> None:
        self.invalid_first = invalid_first
        self.requests: list[ProposalRequest] = []

    def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        n = len(self.requests)
        if n == 1 and self.invalid_first:
            raise ProposalInvalid("the answer holds no JSON object", raw="I would raise LR.")
        return edit_proposal(f"structural change {n}", MARK, f'{MARK}\nprint("structure {n}")')


def _experiments(store, task: str) -> list[ExperimentPublic]:
    query = TraceQuery(task=task, role=[Role.experiment], sort="created_at", limit=100)
    return store.query_traces(query).data


def _one_agent(tmp_path: Path, task_dir: Path, ratio: int, runs: int) -> SwarmConfig:
    """One hybrid agent on the CPU for ``runs`` runs; with ``NO_KEEPS`` and no confirmation
    or re-measure, each proposal is one run or one refusal, so the count is exact."""
    return SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu",
        proposer="hybrid",
        hybrid_ratio=ratio,
        max_experiments=runs,
        confirm=False,
        remeasure=0,
        runs_dir=str(tmp_path / "runs"),
    )


def test_turns_are_k_builtin_then_one_llm():
    assert [turn(n, 2) for n in range(7)] == [BUILTIN, BUILTIN, LLM] * 2 + [BUILTIN]
    assert [turn(n, 1) for n in range(4)] == [BUILTIN, LLM, BUILTIN, LLM]
    assert DEFAULT_RATIO >= 1
    with pytest.raises(ValueError, match="ratio: must be at least 1"):
        turn(0, 0)
    with pytest.raises(ValueError, match="ratio: must be at least 1"):
        HybridProposer(ScriptedLLM(), ScriptedLLM(), ratio=0)


def test_hybrid_alternates_as_configured_and_survives_a_resume(tmp_path, store):
    """ratio 2 with a real builtin side and a scripted LLM side: b, b, llm (unusable: it
    still took its turn), b, b -- then a resume, whose fresh proposer reads the turn from
    memory: llm (given the earlier refusal's reason), b."""
    task_dir = make_task(tmp_path / "quad", noise_min=NO_KEEPS)
    made: list[tuple[HybridProposer, ScriptedLLM]] = []

    def factory(task, root, device, name, seed):
        llm = ScriptedLLM(invalid_first=not made)  # a resume's fresh one answers usably
        builtin = BuiltinProposer(task, root, device.kind, device.hardware, seed=seed)
        made.append((HybridProposer(llm, builtin, ratio=2), llm))
        return made[-1][0]

    config = _one_agent(tmp_path, task_dir, 2, 4)  # 4 runs: b, b, (llm refused: no run), b, b
    first = Swarm(config, store, proposer_factory=factory)
    first.run()
    traces = _experiments(store, "quad")
    assert [t.proposer for t in traces] == [BUILTIN, BUILTIN, LLM, BUILTIN, BUILTIN]
    refused = traces[2]
    assert refused.status == Status.invalid and "no JSON object" in refused.error
    assert all(t.status in RAN_STATUSES for i, t in enumerate(traces) if i != 2)
    assert all("TPE over" in t.hypothesis for t in traces if t.proposer == BUILTIN)
    assert len(made[0][1].requests) == 1, "the LLM was asked on its turn only"

    config.max_experiments = 6
    Swarm(config, store, resume=first.swarm_id, proposer_factory=factory).run()
    traces = _experiments(store, "quad")
    assert [t.proposer for t in traces] == [BUILTIN, BUILTIN, LLM, BUILTIN, BUILTIN, LLM, BUILTIN]
    hybrid, llm = made[1]
    assert hybrid is not made[0][0], "the resumed swarm has a fresh proposer"
    assert len(llm.requests) == 1
    # the refusal two builtin runs ago reached the LLM's next turn (read from memory)
    assert any("no JSON object" in reason for reason in llm.requests[0].feedback)
    structural = traces[5]
    assert structural.status in RAN_STATUSES, structural.error
    assert 'print("structure 1")' in structural.diff
    assert not structural.knobs, "a structural change, no knob moved"


def test_a_model_server_that_does_not_answer_hands_its_turns_to_the_builtin(
    tmp_path, store, caplog
):
    """The LLM side is a real ``LLMProposer`` through langchain-openai to a loopback port
    where no server listens (a model server down for the night): each of its turns waits
    out its patience once and hands the turn to the builtin; the agent goes on, where an
    LLM agent stops, and its next LLM turn asks once instead of waiting again."""
    task_dir = make_task(tmp_path / "quad", noise_min=NO_KEEPS)
    url = f"http://127.0.0.1:{free_port()}/v1"

    def factory(task, root, device, name, seed):
        llm = LLMProposer(make_chat_model("down", url, max_retries=0), patience_s=1)
        builtin = BuiltinProposer(task, root, device.kind, device.hardware, seed=seed)
        return HybridProposer(llm, builtin, ratio=1)

    config = _one_agent(tmp_path, task_dir, 1, 4)  # proposals 1 and 3 are the LLM's
    with caplog.at_level("WARNING", logger="agents.proposers.hybrid"):
        result = Swarm(config, store, proposer_factory=factory).run()
    assert result.errors == [], result.errors
    traces = _experiments(store, "quad")
    assert [t.proposer for t in traces] == [BUILTIN] * 4
    assert all(t.status in RAN_STATUSES for t in traces)
    handed = [r.message for r in caplog.records if "the builtin takes the turn" in r.message]
    assert len(handed) == 2, handed
    assert "the model's server has not answered for 1 s (2 tries)" in handed[0]
    assert "the model's server still does not answer (asked once" in handed[1]


def test_builtin_side_tunes_a_base_that_lost_a_knob(tmp_path, store):
    """After an LLM change that removed a knob, the builtin samples only the knobs the base
    still holds (no KeyError from rewriting a knob that is gone)."""
    task = load_task(make_task(tmp_path / "quad"))
    root = Program.read(task.root, task.editable)
    device = cpu_devices(1)[0]
    base = root.replace_file(
        "train.py",
        root.get("train.py")
        .replace("USE_BIAS = False\n", "")
        .replace("loss -= 0.01 if USE_BIAS else 0.0\n", ""),
    )
    builtin = BuiltinProposer(task, root, device.kind, device.hardware, seed=3)
    for i in range(8):
        request = ProposalRequest(
            task=task,
            agent_id=f"s/agent-{i}",
            device=device,
            store=store,
            base=base,
            base_trace=None,
            base_metric=None,
            champion=None,
        )
        proposal = builtin.propose(request)
        assert proposal.edits and all("USE_BIAS" not in e.replace for e in proposal.edits)


def test_the_swarm_factory_builds_a_hybrid_and_records_its_space(tmp_path):
    gguf = smollm2_gguf()
    task = load_task(make_task(tmp_path / "quad"))
    root = Program.read(task.root, task.editable)
    config = SwarmConfig(task=str(task.root), proposer="hybrid", model=f"hf:{gguf}")
    proposer = default_proposer_factory(config)(task, root, cpu_devices(1)[0], "agent-0", 0)
    assert isinstance(proposer, HybridProposer) and proposer.ratio == DEFAULT_RATIO
    assert isinstance(proposer.llm, LLMProposer)
    assert isinstance(proposer.builtin, BuiltinProposer)
    assert set(recorded_space(config, task, root, "cpu")) == {
        "LR",
        "WIDTH",
        "WARMUP",
        "USE_BIAS",
        "MODE",
    }
    with pytest.raises(SwarmError, match="--proposer hybrid needs --model"):
        default_proposer_factory(SwarmConfig(proposer="hybrid"))
    with pytest.raises(SwarmError, match="--hybrid-ratio: must be at least 1"):
        default_proposer_factory(SwarmConfig(proposer="hybrid", model="x", hybrid_ratio=0))


def test_cli_hybrid_flags_are_checked(tmp_path):
    def run(*flags: str) -> subprocess.CompletedProcess:
        cmd = [LABSWARM, "run", "--memory", str(tmp_path / "m"), "--runs-dir", str(tmp_path / "r")]
        return subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=120)

    out = run("--hybrid-ratio", "2")
    assert out.returncode == 2 and "--hybrid-ratio: only for --proposer hybrid" in out.stderr
    out = run("--proposer", "hybrid", "--model", "x", "--hybrid-ratio", "0")
    assert out.returncode == 2 and "argument --hybrid-ratio: must be at least 1" in out.stderr
    out = run("--proposer", "hybrid")
    assert out.returncode == 2 and "--proposer hybrid needs --model" in out.stderr
    assert not any((tmp_path / "r").glob("*")), "no swarm was started"
    help_text = subprocess.run(
        [LABSWARM, "run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--hybrid-ratio" in help_text and "hybrid" in help_text


@pytest.mark.slow
def test_hybrid_swarm_with_the_real_local_model_alternates(tmp_path, store):
    """A real swarm: SQLite memory, the quad task's runs as subprocesses, the builtin side,
    and SmolLM2-135M-Instruct (transformers on CPU) as the LLM side, ratio 2."""
    # one agent: nothing else runs while the model generates, so both cores generate
    chat = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=96, threads=2)
    made: list[HybridProposer] = []

    def factory(task, root, device, name, seed):
        builtin = BuiltinProposer(task, root, device.kind, device.hardware, seed=seed)
        made.append(HybridProposer(LLMProposer(chat), builtin, ratio=2))
        return made[-1]

    task_dir = make_task(tmp_path / "quad", noise_min=NO_KEEPS)
    config = SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu",
        proposer="hybrid",
        hybrid_ratio=2,
        max_experiments=3,  # b, b, then the model's turn (and a builtin one if it was refused)
        confirm=False,
        remeasure=0,
        max_refusals=4,
        runs_dir=str(tmp_path / "runs"),
    )
    Swarm(config, store, proposer_factory=factory).run()

    traces = _experiments(store, "quad")
    assert len(traces) >= 3
    assert [t.proposer for t in traces] == [turn(n, 2) for n in range(len(traces))]
    assert traces[2].proposer == LLM
    llm = made[0].llm
    assert isinstance(llm, LLMProposer)
    transcript = list(llm.transcript)
    assert len(transcript) >= 1 and all(entry["output"] for entry in transcript)
    assert "LR = 0.1  # step size" in transcript[0]["user"], "the prompt holds the base file"
    for trace in traces:
        if trace.proposer == BUILTIN:
            assert trace.status in RAN_STATUSES and "TPE over" in trace.hypothesis
        elif trace.status == Status.invalid:  # the model's answer, refused with its reason
            assert trace.error.startswith(("unusable proposal:", "invalid edit:"))
        else:  # the model's change ran (or was refused as already run)
            assert trace.diff.startswith("--- a/train.py")
