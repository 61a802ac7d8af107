"""A LangChain chat model over a local transformers model (a directory or a ``.gguf`` file).

``--model hf:/path/to/model.gguf`` (or a model directory) runs the model in-process on the
CPU or a GPU; no server and no download. A ``.gguf`` file is de-quantised once and the
result cached under ``<cache dir>/gguf``: the ``cache_dir`` given (``labswarm run`` passes
``LABSWARM_CACHE_DIR`` from :mod:`memory.settings`), else ``~/.cache/labswarm``. Loaded
models are shared by every agent of the process, and generation is serialised per model.
A call given ``abandon=<threading.Event>`` stops generating as soon as the event is set (the
LLM proposer passes the swarm's stop signal) and raises :class:`GenerationAbandoned`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

log = logging.getLogger(__name__)

_LOADED: dict[str, tuple[Any, Any, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}


def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$XDG_CACHE_HOME/labswarm`` or ``~/.cache/labswarm``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "labswarm"


def _converted_dir(gguf: Path, cache_dir: Path | None) -> Path:
    """Where the de-quantised copy of a ``.gguf`` file is kept (keyed by path, size, mtime)."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return cache_root(cache_dir) / "gguf" / f"{gguf.stem}-{key[:16]}"


def _load(path: str, cache_dir: Path | None) -> tuple[Any, Any, threading.Lock]:
    """Tokenizer and model of ``path``; a ``.gguf`` is de-quantised once and cached."""
    with _LOAD_LOCK:
        if path not in _LOADED:
            from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: lazy

            p = Path(path).expanduser()
            if not p.exists():
                raise FileNotFoundError(f"model {path!r} does not exist")
            if p.is_dir():
                tokenizer = AutoTokenizer.from_pretrained(str(p))
                model = AutoModelForCausalLM.from_pretrained(str(p))
            else:
                cached = _converted_dir(p, cache_dir)
                if (cached / "config.json").is_file():
                    tokenizer = AutoTokenizer.from_pretrained(str(cached))
                    model = AutoModelForCausalLM.from_pretrained(str(cached))
                else:
                    log.info("de-quantising %s (once; cached in %s)", p, cached)
                    tokenizer = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
                    model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)
                    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
                    try:  # the weights are plain tensors now: save them as such
                        setattr(model, "hf_quantizer", None)  # noqa: B010 (typed stub)
                        if hasattr(model.config, "quantization_config"):
                            del model.config.quantization_config
                        model.save_pretrained(str(tmp))
                        tokenizer.save_pretrained(str(tmp))
                        tmp.replace(cached)
                    except OSError as exc:  # a cache is an optimisation only
                        log.warning("cannot cache the converted model in %s: %s", cached, exc)
                        shutil.rmtree(tmp, ignore_errors=True)
            model.eval()
            _LOADED[path] = (tokenizer, model, threading.Lock())
        return _LOADED[path]


class PromptTooLong(ValueError):
    """The prompt and the answer's tokens do not fit the model's context window: generating
    past it gives text the model was never trained to write, and takes long on a CPU."""

    def __init__(self, tokens: int, answer: int, window: int) -> None:
        super().__init__(
            f"the prompt is {tokens} tokens; with {answer} for the answer it exceeds the "
            f"model's context of {window} tokens"
        )


def _too_long(tokens: int, answer: int, window: int | None) -> PromptTooLong | None:
    """The error for a prompt of ``tokens`` whose answer of ``answer`` tokens would pass the
    model's context ``window``; None if it fits or the model names no window."""
    return PromptTooLong(tokens, answer, window) if window and tokens + answer > window else None


def _window(model: Any) -> int | None:
    window = getattr(model.config, "max_position_embeddings", None)
    return window if isinstance(window, int) else None


def _chat_inputs(tokenizer: Any, messages: list[BaseMessage]) -> Any:
    chat = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]
    return tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


class GenerationAbandoned(RuntimeError):
    """Generation stopped early because the ``abandon`` event given to the call was set."""


def _abandon_when(event: threading.Event) -> Any:
    """A transformers stopping criterion that ends generation once ``event`` is set
    (checked after each token)."""
    import torch
    from transformers import StoppingCriteria

    class _Abandon(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), device=input_ids.device)

    return _Abandon()


class TransformersChatModel(BaseChatModel):
    """Chat with a local causal LM through its chat template (greedy by default)."""

    model_path: str
    cache_dir: Path | None = None  # where a de-quantised .gguf is kept (see cache_root)
    max_new_tokens: int = 256
    temperature: float = 0.0
    threads: int | None = None  # torch CPU threads for generation (process-wide); None: default
    model_config = ConfigDict(protected_namespaces=())
    _parts: tuple[Any, Any, threading.Lock] | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "transformers"

    def _loaded(self) -> tuple[Any, Any, threading.Lock]:
        if self._parts is None:
            self._parts = _load(self.model_path, self.cache_dir)
        return self._parts

    def too_long(self, messages: list[BaseMessage]) -> PromptTooLong | None:
        """Why ``messages`` cannot be answered within the model's context window (its
        tokens, the answer's, the window), or None if they can (the check ``invoke`` makes
        before generating, without generating)."""
        tokenizer, model, _ = self._loaded()
        tokens = int(_chat_inputs(tokenizer, messages)["input_ids"].shape[1])
        return _too_long(tokens, self.max_new_tokens, _window(model))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "max_new_tokens": self.max_new_tokens}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        tokenizer, model, lock = self._loaded()
        if self.threads:  # on a busy CPU one thread beats two that wait on each other
            torch.set_num_threads(self.threads)
        inputs = _chat_inputs(tokenizer, messages)
        gen: dict[str, Any] = {"max_new_tokens": kwargs.get("max_new_tokens", self.max_new_tokens)}
        tokens = int(inputs["input_ids"].shape[1])
        too_long = _too_long(tokens, gen["max_new_tokens"], _window(model))
        if too_long is not None:
            raise too_long
        if self.temperature > 0:
            gen.update(do_sample=True, temperature=self.temperature)
        else:
            gen.update(do_sample=False)
        abandon: threading.Event | None = kwargs.get("abandon")
        if abandon is not None:
            gen["stopping_criteria"] = [_abandon_when(abandon)]
        with lock, torch.no_grad():
            if abandon is not None and abandon.is_set():  # set while it waited for the lock
                raise GenerationAbandoned("the answer was abandoned before it began")
            out = model.generate(**inputs, **gen, pad_token_id=tokenizer.eos_token_id)
        new_tokens = out[0][tokens:]
        if abandon is not None and abandon.is_set():
            raise GenerationAbandoned(
                f"the answer was abandoned after {len(new_tokens)} of at most "
                f"{gen['max_new_tokens']} tokens"
            )
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        for s in stop or []:
            if s in text:
                text = text[: text.index(s)]
        usage = {
            "input_tokens": tokens,
            "output_tokens": len(new_tokens),
        }
        # "length": the answer stopped at max_new_tokens, as OpenAI-style servers say it
        finish = "length" if len(new_tokens) >= gen["max_new_tokens"] else "stop"
        message = AIMessage(
            content=text, response_metadata={"usage": usage, "finish_reason": finish}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])
