"""The LLM proposer: any LangChain chat model proposes hypothesis + search/replace edits.

``--model`` picks the model:

- ``provider:model`` through ``init_chat_model`` (``openai:gpt-4.1``,
  ``anthropic:claude-sonnet-4-5``, ``ollama:qwen3``; the provider's LangChain package
  must be installed);
- with ``--base-url``, any OpenAI-compatible server (vLLM, llama.cpp, LM Studio):
  ``--model my-model --base-url http://127.0.0.1:8000/v1``;
- ``hf:/path/to/model.gguf`` or ``hf:/path/to/model-dir``: a local transformers model.

Output is structured (``with_structured_output`` where the model supports it, otherwise
JSON parsed from the text, a trailing comma forgiven). A prompt is fitted to the model's
context window: memory's text is shortened, the task and its files never (see
``LLMProposer.propose``). Unusable output raises
``ProposalInvalid`` with the reason; the graph records it as ``invalid`` and feeds the
reason back on the next try.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableSequence
from pydantic import ValidationError

from agents.proposers.base import (
    ModelUnavailable,
    Proposal,
    ProposalAbandoned,
    ProposalInvalid,
    ProposalRequest,
    Proposer,
)
from agents.proposers.hf_chat import GenerationAbandoned, PromptTooLong, TransformersChatModel
from agents.proposers.prompts import shortened, system_prompt, user_prompt

log = logging.getLogger(__name__)

# How much of each list of memory text a prompt keeps, tried in turn until the prompt fits
# the model's context window (a local model's, checked here; a server's, by the server's
# refusal): 1, all of it; 0, none, the champion left out too.
FIT_FRACTIONS = (1.0, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05, 0.0)
CUT = "it reached the model's limit of new tokens; a shorter answer fits"
# A server that does not answer (down, restarting, overloaded, timed out) is asked again,
# waiting 1, 2, 4 ... up to 60 s between tries, for this long before its agent stops: a
# model server restarted at night costs its agents a wait, not the rest of the night.
SERVER_PATIENCE_S = 900.0
MODEL_TIMEOUT_S = 600.0  # a server's answer: seconds before the call is given up and retried
# A server that did not answer the last call is first asked for its list of models (``GET
# /models``), waiting this long: one that takes the connection and never answers (hung)
# then costs a hybrid agent's LLM turn seconds, not a whole --model-timeout.
PROBE_TIMEOUT_S = 10.0
# After the second call in a row whose request timed out (the server took it and never
# answered), the server is not asked again for this long, doubled at each further such call
# up to ``QUIET_MAX_S``: a hybrid agent's LLM turns meanwhile go to the builtin at once. A
# server that lists its models but never answers a request would otherwise cost every LLM
# turn a whole --model-timeout all night. A refused connection costs nothing: no quiet.
QUIET_S = 300.0
QUIET_MAX_S = 3600.0
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class MissingDependency(ImportError):
    """An optional dependency of the chosen model is not installed (the message says what
    to install)."""


def _require(modules: tuple[str, ...], what: str, install: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependency(f"{what} needs {', '.join(missing)}: {install}")


def model_label(model: BaseChatModel) -> str:
    """The model's name for a log line (its path, or the provider's model name), not the
    repr of every setting it holds."""
    for attr in ("model_path", "model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def make_chat_model(
    model: str,
    base_url: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout_s: float | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """A chat model from a ``--model`` string (see the module docstring). ``timeout_s``:
    how long an OpenAI client (``--base-url`` servers, ``openai:`` models) waits for one
    answer (its own default is to wait for ever). A missing optional dependency raises
    :class:`MissingDependency` naming what to install."""
    if model.startswith("hf:"):
        needed: tuple[str, ...] = ("transformers", "torch", "accelerate")
        if model.endswith(".gguf"):
            needed += ("gguf",)
        _require(needed, f"--model {model!r}", "pip install 'labswarm[llm]'")
        return TransformersChatModel(model_path=model[3:], cache_dir=cache_dir, **kwargs)
    from langchain.chat_models import init_chat_model

    if base_url:
        kwargs["base_url"] = base_url
        if ":" not in model:
            kwargs["model_provider"] = "openai"
            kwargs.setdefault("api_key", "not-needed")
    if timeout_s is not None and (
        kwargs.get("model_provider") == "openai" or model.startswith("openai:")
    ):
        kwargs.setdefault("timeout", timeout_s)
    try:
        return init_chat_model(model, **kwargs)
    except ImportError as exc:
        raise MissingDependency(
            f"--model {model!r} needs the provider's LangChain package ({exc}); install it, "
            "for example pip install langchain-openai or langchain-anthropic"
        ) from None


def _outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` from ``start`` that is not inside a JSON string (a
    string's quotes are outside), with its index."""
    in_str = escape = False
    for i in range(start, len(text)):
        c = text[i]
        if not in_str:
            in_str = c == '"'
            yield i, c
        elif escape:
            escape = False
        elif c == "\\":
            escape = True
        elif c == '"':
            in_str = False
            yield i, c


def _json_candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        depth = 0
        for i, c in _outside_strings(text, start):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start : i + 1])
                    break
        else:
            found.append(text[start:])
    return found


_CLOSING = re.compile(r"\s*[}\]]")


def without_trailing_commas(text: str) -> str:
    """``text`` without each comma that follows a value and that only whitespace separates
    from a closing ``}`` or ``]``, outside strings: ``[1, 2,]`` -> ``[1, 2]``; ``[,]`` and
    ``"a,]"`` are left alone."""
    dropped: set[int] = set()
    last = ""  # the last character outside strings and whitespace
    for i, c in _outside_strings(text):
        if c == "," and last not in ("[", "{", ",") and _CLOSING.match(text, i + 1):
            dropped.add(i)
        elif not c.isspace():
            last = c
    return "".join(c for i, c in enumerate(text) if i not in dropped)


def parse_proposal(text: str) -> Proposal:
    """The proposal in a model's text answer, or ``ProposalInvalid`` saying what is wrong."""
    candidates = _json_candidates(text)
    if not candidates:
        raise ProposalInvalid("the answer holds no JSON object", raw=text)
    last_error = ""
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError as exc:
            try:  # small local models often leave a comma before a closing bracket
                data = json.loads(without_trailing_commas(candidate))
            except json.JSONDecodeError:
                last_error = f"the JSON object does not parse: {exc.msg} at char {exc.pos}"
                continue
        if not isinstance(data, dict):
            last_error = "the JSON value is not an object"
            continue
        try:
            return Proposal.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            hyp = data.get("hypothesis")
            hyp = hyp if isinstance(hyp, str) else ""
            raise ProposalInvalid(
                f"the JSON object does not match the schema: field '{where}': {first['msg']}",
                raw=text,
                hypothesis=hyp,
            ) from None
    raise ProposalInvalid(last_error, raw=text)


def unnamed(proposal: Proposal) -> Proposal:
    """``proposal`` without a ``proposer`` name: the model's output never says who made it
    (a model writing ``"proposer": "builtin"`` would otherwise pass as the builtin)."""
    return proposal.model_copy(update={"proposer": ""}) if proposal.proposer else proposal


class LLMProposer(Proposer):
    """Asks a chat model for one proposal per call."""

    name = "llm"

    def __init__(
        self,
        model: BaseChatModel,
        *,
        patience_s: float = SERVER_PATIENCE_S,
        probe_s: float = PROBE_TIMEOUT_S,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.model = model
        self.patience_s = patience_s
        self.probe_s = probe_s
        self.quiet_s = quiet_s
        # the last call gave up on the server (ModelUnavailable): the next is asked once
        # and not waited for, until the server answers again
        self.unanswered = False
        self.hung_calls = 0  # calls in a row whose request timed out, unanswered
        self.quiet_until = 0.0  # time.monotonic() before which the server is not asked
        self._structured: Any = None  # None: not tried yet; False: not supported
        self.transcript: deque[dict[str, Any]] = deque(maxlen=50)

    def _structured_chain(self) -> Any:
        """The model asked for a :class:`Proposal`, answering ``{"raw", "parsed",
        "parsing_error"}`` (see :class:`_RawAndParsed`); False where the model has no
        structured output."""
        if self._structured is None:
            try:
                self._structured = _RawAndParsed.of(self.model)
            except (NotImplementedError, ValueError, TypeError) as exc:
                log.info(
                    "%s has no structured output (%s); parsing JSON from text",
                    model_label(self.model),
                    exc,
                )
                self._structured = False
        return self._structured

    def _call(
        self,
        runnable: Any,
        messages: list[Any],
        options: dict[str, Any] | None = None,
        stop: threading.Event | None = None,
    ) -> Any:
        """Invoke; a server that does not answer (``_transient_errors``: no connection, a
        timeout, 429, 5xx) is asked again after 1, 2, 4 ... 60 s, a last time when
        ``patience_s`` have passed since the first failure, then :class:`ModelUnavailable`
        stops the agent. After a call that gave up, the server is asked once per call until
        it answers (a hybrid's LLM turns go on asking; each waits no patience out again),
        and an OpenAI-compatible server is first asked for its list of models, waiting
        ``probe_s``: no answer to that (a hung server) gives the call up at once. From the
        second call in a row whose request timed out (a server that lists its models but
        never answers), the server is left quiet (not asked: the call gives up at once)
        for ``quiet_s``, doubled at each further one up to ``QUIET_MAX_S``. ``options`` go
        to the model's call. ``stop``: a server's answer is not awaited once it is set
        (``awaited``), nor is a wait between tries finished."""
        if self.unanswered:
            left = self.quiet_until - time.monotonic()
            if left > 0:
                raise ModelUnavailable(
                    f"the model's server is not asked for another {left:.0f} s: it took the "
                    f"last {self.hung_calls} requests and answered none in time"
                )
            self._probe(stop)
        try:
            return self._asked(runnable, messages, options, stop)
        except ModelUnavailable as exc:
            self._gave_up(hung=isinstance(exc.__cause__, _timeout_errors()))
            raise

    def _gave_up(self, *, hung: bool) -> None:
        """Count a call that gave up on the server; ``hung``: its last try timed out (the
        costly kind: a refused connection costs nothing). From the second hung call in a
        row, leave the server quiet for ``quiet_s`` * 2 ** (calls - 2), at most
        ``QUIET_MAX_S``."""
        self.unanswered = True
        self.hung_calls = self.hung_calls + 1 if hung else 0
        if self.hung_calls >= 2:
            quiet = min(self.quiet_s * 2.0 ** (self.hung_calls - 2), QUIET_MAX_S)
            self.quiet_until = time.monotonic() + quiet

    def _asked(
        self,
        runnable: Any,
        messages: list[Any],
        options: dict[str, Any] | None,
        stop: threading.Event | None,
    ) -> Any:
        """The call itself, asked again while the server does not answer (see ``_call``)."""
        transient = _transient_errors()
        first: float | None = None
        attempt = 0
        while True:
            try:
                answer = awaited(lambda: runnable.invoke(messages, **(options or {})), stop)
            except transient as exc:
                now = time.monotonic()
                first = now if first is None else first
                attempt += 1
                if self.unanswered:
                    raise ModelUnavailable(
                        "the model's server still does not answer (asked once: it did not "
                        f"answer the last call either): {_server_words(exc)}"
                    ) from exc
                if now - first >= self.patience_s:
                    raise ModelUnavailable(
                        f"the model's server has not answered for {now - first:.0f} s "
                        f"({attempt} tries): {_server_words(exc)}"
                    ) from exc
                delay = min(2.0 ** (attempt - 1), 60.0, self.patience_s - (now - first))
                log.warning("the model's server did not answer (%s); asking again in %.0f s",
                            _server_words(exc), delay)  # fmt: skip
                if stop is not None and stop.wait(delay):
                    raise GenerationAbandoned(
                        "the swarm is stopping: the model's server is not asked again"
                    ) from None
                if stop is None:
                    time.sleep(delay)
            except GenerationAbandoned:
                raise  # the swarm is stopping: no answer came
            except Exception:
                self._answered()  # the server answered, refusing this request
                raise
            else:
                self._answered()
                return answer

    def _answered(self) -> None:
        self.unanswered = False
        self.hung_calls = 0
        self.quiet_until = 0.0

    def _probe(self, stop: threading.Event | None) -> None:
        """Ask a server that did not answer the last call for its list of models, waiting
        ``probe_s``; :class:`ModelUnavailable` if it does not answer (no connection, a
        timeout). Any HTTP answer, an error status included (a server without
        ``/models``, one busy or loading), is an answer: the call itself is then asked
        once. Only models with an OpenAI client (``--base-url`` servers, ``openai:``) are
        probed; others go straight to the call."""
        root = getattr(self.model, "root_client", None)  # langchain-openai's openai.OpenAI
        if root is None or not hasattr(root, "with_options"):
            return
        client = root.with_options(timeout=self.probe_s, max_retries=0)
        try:
            awaited(client.models.list, stop)
        except _no_answer_errors() as exc:
            raise ModelUnavailable(
                "the model's server still does not answer (asked once: its list of models, "
                f"waiting {self.probe_s:g} s; it did not answer the last call either): "
                f"{_server_words(exc)}"
            ) from exc
        except GenerationAbandoned:
            raise
        except Exception as exc:  # noqa: BLE001 - an error status is the server answering
            log.info("the model's server answered its list of models with %s", exc)

    def propose(self, request: ProposalRequest) -> Proposal:
        """One answer to ``request``'s prompt, fitted to the model's context window: when
        the whole prompt does not fit, each list of memory text keeps a shorter head
        (``FIT_FRACTIONS``, ``prompts.shortened``) until it fits, and the prompt says how
        much was left out; the task, its notes and the base files always go whole (an
        edit quotes them). A local model's window is checked here, before generating; a
        server's by the server: a request it refuses as invalid is tried again shorter."""
        if request.stop is not None and request.stop.is_set():  # a call may not end soon
            raise ProposalAbandoned("the swarm is stopping: no model is asked")
        system = system_prompt(request)
        model = self.model
        local = isinstance(model, TransformersChatModel)
        # when the swarm stops, a local model stops generating at its next token (abandon)
        # and a server's answer is no longer awaited (``awaited``)
        options = {"abandon": request.stop} if local and request.stop is not None else {}
        entry: dict[str, Any] = {"system": system, "user": "", "output": ""}
        self.transcript.append(entry)
        why = ""
        for fraction in FIT_FRACTIONS:
            kept, left_out = shortened(request, fraction)
            entry["user"] = user_prompt(kept, left_out)
            messages = [SystemMessage(content=system), HumanMessage(content=entry["user"])]
            too_long = (
                model.too_long(messages) if isinstance(model, TransformersChatModel) else None
            )
            if too_long is not None:
                why = f"the model cannot read the prompt, even with nothing from memory: {too_long}"
                continue
            if left_out:
                log.debug("prompt fitted to the model's window: %d items left out", left_out)
            try:
                return self._answer(messages, entry, options, None if local else request.stop)
            except _Refused as exc:  # maybe too long for the server's context
                why = (
                    f"the model's server refused the request, even with nothing from memory: {exc}"
                )
            except PromptTooLong as exc:  # the window, checked again as the model generates
                raise ProposalInvalid(f"the model cannot read the prompt: {exc}") from None
            except GenerationAbandoned as exc:
                raise ProposalAbandoned(str(exc)) from None
        raise ProposalInvalid(why)

    def _answer(
        self,
        messages: list[Any],
        entry: dict[str, Any],
        options: dict[str, Any],
        stop: threading.Event | None = None,
    ) -> Proposal:
        cut, refused = _server_errors()
        chain = self._structured_chain()
        refusal: Exception | None = None
        if chain:
            try:
                result = self._call(chain, messages, stop=stop)
            except cut as exc:  # the client will not parse an answer that stopped early
                entry["output"] = _answer_text(exc)
                raise ProposalInvalid(f"the answer was cut: {CUT}", raw=entry["output"]) from None
            except refused as exc:  # e.g. a server that takes no response format
                refusal = exc
            else:
                raw = result.get("raw")
                entry["output"] = str(getattr(raw, "content", raw))
                if result.get("parsed") is not None:
                    parsed = result["parsed"]
                    made = (
                        parsed if isinstance(parsed, Proposal) else Proposal.model_validate(parsed)
                    )
                    return unnamed(made)
                raise ProposalInvalid(
                    f"the answer does not match the schema: {result.get('parsing_error')}",
                    raw=entry["output"],
                )
        try:
            response = self._call(self.model, messages, options, stop)
        except refused as exc:  # e.g. a prompt past the server's context
            raise _Refused(_server_words(exc)) from None
        if refusal is not None:  # it took the plain request: ask for text from now on
            log.info(
                "%s refused structured output (%s); parsing JSON from text",
                model_label(self.model),
                refusal,
            )
            self._structured = False
        content = response.content
        text = content if isinstance(content, str) else json.dumps(content)
        entry["output"] = text
        try:
            return unnamed(parse_proposal(text))
        except ProposalInvalid as exc:
            if response.response_metadata.get("finish_reason") != "length":
                raise
            raise ProposalInvalid(
                f"{exc.reason} (the answer was cut: {CUT})", raw=exc.raw, hypothesis=exc.hypothesis
            ) from None


class _RawAndParsed:
    """A structured-output call that keeps the raw answer, run in the calling thread.

    LangChain's ``with_structured_output(..., include_raw=True)`` runs the model inside a
    ``RunnableParallel``, whose executor threads Python joins at exit: a call given up as
    the swarm stopped (``awaited``) then held a library user's process until the server
    answered or ``--model-timeout`` passed. The plain structured chain is a sequence
    (the model, then its parsers): here its first step is asked, then the rest parse the
    answer, both in this thread. A chain of another shape is taken with ``include_raw``."""

    def __init__(self, model: Runnable[Any, Any], parse: Runnable[Any, Any]) -> None:
        self.model, self.parse = model, parse

    @staticmethod
    def of(model: BaseChatModel) -> Any:
        chain = model.with_structured_output(Proposal)
        if isinstance(chain, RunnableSequence):
            rest = chain.steps[1:]
            return _RawAndParsed(
                chain.first, rest[0] if len(rest) == 1 else RunnableSequence(*rest)
            )
        return model.with_structured_output(Proposal, include_raw=True)

    def invoke(self, messages: list[Any], **options: Any) -> dict[str, Any]:
        raw = self.model.invoke(messages, **options)  # a cut or refused answer raises here
        try:
            return {"raw": raw, "parsed": self.parse.invoke(raw), "parsing_error": None}
        except Exception as exc:  # noqa: BLE001 - an answer off the schema, reported by the caller
            return {"raw": raw, "parsed": None, "parsing_error": exc}


_GIVEN_UP: set[threading.Thread] = set()  # calls given up by ``awaited``, still running
_GIVEN_UP_LOCK = threading.Lock()


def calls_given_up() -> int:
    """How many model calls ``awaited`` gave up on are still waiting for their server.
    LangChain runs some calls (structured output) in an executor whose threads Python
    joins at exit, so a process that must not wait for them ends with ``os._exit``
    (``agents.cli.console``)."""
    with _GIVEN_UP_LOCK:
        return sum(1 for t in _GIVEN_UP if t.is_alive())


def awaited(call: Callable[[], Any], stop: threading.Event | None) -> Any:
    """``call()``'s result; with ``stop``, the call runs in a daemon thread and is given up
    (``GenerationAbandoned``) once ``stop`` is set: a server's answer cannot be stopped, so
    it is left to finish unread (``calls_given_up`` counts it until it does), and the swarm
    ends without waiting minutes for it."""
    if stop is None:
        return call()
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()
            with _GIVEN_UP_LOCK:
                _GIVEN_UP.discard(threading.current_thread())

    worker = threading.Thread(target=work, name="labswarm-model-call", daemon=True)
    worker.start()
    while not done.wait(0.2):
        if stop.is_set():
            with _GIVEN_UP_LOCK:
                if not done.is_set():
                    _GIVEN_UP.add(worker)
            raise GenerationAbandoned("the swarm is stopping: the server's answer is not awaited")
    if "error" in box:
        raise box["error"]
    return box["value"]


class _Refused(Exception):
    """The model's server refused the request itself as invalid (its words)."""


def _client_errors(names: tuple[str, ...]) -> list[type[Exception]]:
    """The OpenAI and Anthropic clients' error classes of these names, where installed."""
    out: list[type[Exception]] = []
    for module in ("openai", "anthropic"):
        try:
            client = importlib.import_module(module)
        except ImportError:
            continue
        for name in names:
            kind = getattr(client, name, None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                out.append(kind)
    return out


@functools.cache
def _no_answer_errors() -> tuple[type[Exception], ...]:
    """Errors of a server that gave no answer at all: no connection or a timeout (the
    network's, and the OpenAI and Anthropic clients')."""
    return (ConnectionError, TimeoutError, OSError, *_client_errors(("APIConnectionError",)))


@functools.cache
def _timeout_errors() -> tuple[type[Exception], ...]:
    """Errors of a request the server took and did not answer in time."""
    return (TimeoutError, *_client_errors(("APITimeoutError",)))


@functools.cache
def _transient_errors() -> tuple[type[Exception], ...]:
    """Errors of a server that may answer if asked again later: no answer at all
    (``_no_answer_errors``), a rate limit (429) and a server error (5xx)."""
    busy = _client_errors(("RateLimitError", "InternalServerError"))
    return (*_no_answer_errors(), *busy)


@functools.cache
def _server_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """The OpenAI client's errors (``--base-url`` servers, ``openai:`` models) for an answer
    the client will not parse (cut at the token limit, filtered), and for a request the
    server refused as invalid (400, 422: a prompt past its context, a response format it
    does not take); none where the client is not installed. Either is one proposal's
    failure, recorded ``invalid``; anything else (no server, a wrong model name, a bad key)
    stops the agent with its error."""
    try:
        import openai
    except ImportError:
        return (), ()
    return (
        (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError),
        (openai.BadRequestError, openai.UnprocessableEntityError),
    )


def _answer_text(exc: Exception) -> str:
    """The text of the answer an OpenAI client error carries (``completion``), else the
    error's own words."""
    try:
        text = exc.completion.choices[0].message.content  # type: ignore[attr-defined]
    except (AttributeError, IndexError):
        return str(exc)
    return text if isinstance(text, str) and text else str(exc)


def _server_words(exc: Exception) -> str:
    """What the server said in refusing a request: the message or detail of its JSON body
    (``Error code: 400`` alone says nothing), else the error's own words."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        said = body.get("message") or body.get("detail")
        if isinstance(said, str) and said:
            return f"{exc}: {said}" if said not in str(exc) else str(exc)
    return str(exc)
