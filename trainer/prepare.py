"""Fixed harness of the built-in task: budget, data, tokenizer, loader and ``evaluate_bpb``.

Agents edit ``train.py`` only; this file is protected (hash-checked after every run), so the
metric means the same thing for every experiment.

Run ``python prepare.py`` to print the corpus, its split and the tokenizer it would build;
``python prepare.py --bpe 4096`` also trains (and caches) that BPE vocabulary ahead of time.

Environment (all optional):
  LABSWARM_TIME_BUDGET  training budget in seconds (default 300)
  LABSWARM_DEVICE       ``cpu`` or ``cuda`` (default: cuda when available)
  LABSWARM_THREADS      CPU threads for torch (default: all cores)
  LABSWARM_CORPUS       a directory of ``.txt`` files or of ``.parquet`` shards with a ``text``
                        column (default: the embedded Shakespeare corpus in ``data/``)
  LABSWARM_CACHE_DIR    where trained BPE vocabularies and token arrays are cached
                        (default: ``$XDG_CACHE_HOME/labswarm`` or ``~/.cache/labswarm``)
  LABSWARM_RESULT       a file ``evaluate_bpb`` appends its result to, one JSON line per call
                        (labswarm sets it and takes the metric from there, not from stdout)
"""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Constants of the harness (fixed: changing them changes the metric)
# ---------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
EMBEDDED_CORPUS = HERE / "data" / "shakespeare.jsonl.xz"
# Whole plays held out for validation (a tragedy, a comedy, a romance, a Roman play; ~10% of
# the corpus). Fixed by name, so the split never depends on file order or a random seed.
EMBEDDED_VAL_WORKS = (
    "hamlet_gut",
    "twelfth_night_gut",
    "tempest_gut",
    "julius_caesar_gut",
)
# For other corpora: about this fraction of the documents, evenly spaced in sorted order.
VAL_FRACTION = 0.1
# The validation text is cut to this many UTF-8 bytes (an equal share from the start of each
# held-out document, see Corpus.val_text), so that evaluation costs a few seconds on a CPU
# share, and the same text is scored whatever the tokenizer. Per device kind.
EVAL_BYTES = {"cpu": 1 << 17, "cuda": 1 << 23}
# Training text read from a large corpus is capped (whole documents, in sorted order).
MAX_TRAIN_BYTES = 1 << 30
DOC_SEPARATOR = "\n\n"
# Steps at the start of training that do not count against the budget (torch.compile and
# CUDA autotuning happen there; on CPU they absorb allocator warm-up).
UNTIMED_STEPS = {"cpu": 2, "cuda": 10}
# Peak dense bf16 throughput used for MFU (H100 SXM, no sparsity).
GPU_PEAK_FLOPS = 989.5e12
# A training loss above this many times ln(vocab) (a uniform guess) counts as divergence.
DIVERGENCE_FACTOR = 2.0
# The causality check before evaluation: this many validation windows, this many positions
# t in each, and the largest change of a logit at positions <= t (times the logits' scale,
# at least 1) that still counts as unchanged: float32 rounding is ~1e-7 of the scale, a
# model that reads ahead moves its logits by far more.
CAUSAL_WINDOWS = 2
CAUSAL_POSITIONS = 4
CAUSAL_TOLERANCE = 1e-4
# Under bfloat16/float16 autocast (train.py on a GPU) one rounding step of a logit is ~2**-8
# of it: the tolerance is a few of those, still far below what a leak moves.
CAUSAL_TOLERANCE_AUTOCAST = 2**-6
METRIC_NAME = "val_bpb"
RESULT_ENV = "LABSWARM_RESULT"


class CorpusError(Exception):
    """The corpus path is missing, unreadable or unusable; the message names the path."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise SystemExit(f"{name}={raw!r} must be positive")
    return value


TIME_BUDGET: float = _env_float("LABSWARM_TIME_BUDGET", 300.0)


# ---------------------------------------------------------------------------
# Device and threads (from the environment the runner sets)
# ---------------------------------------------------------------------------


def setup_device() -> torch.device:
    """Pick the device from ``LABSWARM_DEVICE`` and set the CPU thread count."""
    raw = os.environ.get("LABSWARM_DEVICE", "").strip().lower() or "auto"
    if raw == "auto":
        raw = "cuda" if torch.cuda.is_available() else "cpu"
    if raw not in ("cpu", "cuda"):
        raise SystemExit(f"LABSWARM_DEVICE={raw!r}: expected 'cpu' or 'cuda'")
    if raw == "cuda" and not torch.cuda.is_available():
        raise SystemExit("LABSWARM_DEVICE=cuda but torch sees no CUDA device")
    threads = os.environ.get("LABSWARM_THREADS", "").strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise SystemExit(f"LABSWARM_THREADS={threads!r}: expected a positive integer")
        torch.set_num_threads(int(threads))
    return torch.device(raw)


# ---------------------------------------------------------------------------
# Corpus: documents and the train/validation split (whole documents, never lines)
# ---------------------------------------------------------------------------


@dataclass
class Corpus:
    """Training and validation documents of one corpus, split by whole document."""

    source: str  # human-readable origin
    key: str  # fingerprint of the source and split, for caches
    train: list[tuple[str, str]]  # (name, text)
    val: list[tuple[str, str]]

    def val_text(self, max_bytes: int) -> str:
        """The validation text, at most ``max_bytes`` UTF-8 bytes of the held-out documents.

        Each document in order contributes its first ``max(max_bytes // n, 4096)`` bytes
        (all of it if shorter), so a small cap still samples every held-out play; documents
        are added until the cap is reached.
        """
        share = max(max_bytes // max(len(self.val), 1), 4096)
        sep = DOC_SEPARATOR.encode("utf-8")
        out = b""
        for _, text in self.val:
            if len(out) >= max_bytes:
                break
            piece = text.encode("utf-8")[:share]
            out = (out + sep + piece) if out else piece
        # Cut to the cap, then drop a character cut in half by either cut.
        return out[:max_bytes].decode("utf-8", errors="ignore")

    def train_text_iter(self) -> Iterator[str]:
        for _, text in self.train:
            yield text


def _spaced_indexes(n: int, fraction: float) -> set[int]:
    """Evenly spaced indexes, about ``fraction * n`` of them, at least one, never all."""
    k = min(n - 1, max(1, round(n * fraction)))
    step = n / k
    return {int(step * i + step / 2) for i in range(k)}


def load_embedded() -> Corpus:
    try:
        raw = lzma.decompress(EMBEDDED_CORPUS.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise CorpusError(f"cannot read embedded corpus {EMBEDDED_CORPUS}: {exc}") from exc
    works = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line]
    names = {w["name"] for w in works}
    missing = [n for n in EMBEDDED_VAL_WORKS if n not in names]
    if missing:
        raise CorpusError(f"{EMBEDDED_CORPUS}: validation works missing: {missing}")
    val = [(n, w["text"]) for n in EMBEDDED_VAL_WORKS for w in works if w["name"] == n]
    train = [(w["name"], w["text"]) for w in works if w["name"] not in EMBEDDED_VAL_WORKS]
    key = hashlib.sha256(raw).hexdigest()[:16]
    return Corpus(f"embedded Shakespeare ({EMBEDDED_CORPUS.name})", key, train, val)


def _read_txt(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus file {path} is not UTF-8 text: {exc}") from exc


def _parquet_texts(path: Path, byte_cap: int) -> Iterator[str]:
    """Yield the ``text`` column of one parquet shard, row group by row group."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        if "text" not in pf.schema_arrow.names:
            raise CorpusError(
                f"parquet shard {path} has no 'text' column (columns: {pf.schema_arrow.names})"
            )
        seen = 0
        for i in range(pf.num_row_groups):
            for text in pf.read_row_group(i, columns=["text"]).column("text").to_pylist():
                if text:
                    yield text
                    seen += len(text)
                    if seen >= byte_cap:
                        return
    except CorpusError:
        raise
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise CorpusError(f"cannot read parquet shard {path}: {exc}") from exc


def load_path(root: Path) -> Corpus:
    """A directory of ``.txt`` files (one document each) or of ``.parquet`` shards."""
    if not root.exists():
        raise CorpusError(f"corpus path does not exist: {root}")
    if not root.is_dir():
        raise CorpusError(f"corpus path is not a directory: {root}")
    try:
        entries = sorted(p for p in root.iterdir() if p.is_file())
    except OSError as exc:
        raise CorpusError(f"cannot list corpus directory {root}: {exc.strerror or exc}") from exc
    shards = [p for p in entries if p.suffix == ".parquet"]
    texts = [p for p in entries if p.suffix == ".txt"]
    stat_key = hashlib.sha256()
    for p in shards or texts:
        st = p.stat()
        stat_key.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = stat_key.hexdigest()[:16]
    if shards:
        if len(shards) >= 2:  # the last shard (sorted by name) is the validation shard
            val = [
                (f"{shards[-1].name}#{i}", t)
                for i, t in enumerate(_parquet_texts(shards[-1], max(EVAL_BYTES.values())))
            ]
            train: list[tuple[str, str]] = []
            budget = MAX_TRAIN_BYTES
            for shard in shards[:-1]:
                for i, t in enumerate(_parquet_texts(shard, budget)):
                    train.append((f"{shard.name}#{i}", t))
                    budget -= len(t)
                if budget <= 0:
                    break
        else:
            rows = list(_parquet_texts(shards[0], MAX_TRAIN_BYTES))
            if len(rows) < 2:
                raise CorpusError(f"parquet shard {shards[0]} has fewer than 2 non-empty rows")
            held = _spaced_indexes(len(rows), VAL_FRACTION)
            val = [(f"{shards[0].name}#{i}", t) for i, t in enumerate(rows) if i in held]
            train = [(f"{shards[0].name}#{i}", t) for i, t in enumerate(rows) if i not in held]
        if not val or not train:
            raise CorpusError(f"parquet corpus {root} has an empty training or validation split")
        return Corpus(f"parquet shards in {root}", key, train, val)
    if len(texts) < 2:
        raise CorpusError(
            f"corpus directory {root} needs at least 2 .txt files or 1 .parquet shard "
            f"(found {len(texts)} .txt, 0 .parquet)"
        )
    held = _spaced_indexes(len(texts), VAL_FRACTION)
    docs = [(p.name, _read_txt(p)) for p in texts]
    val = [d for i, d in enumerate(docs) if i in held]
    train = [d for i, d in enumerate(docs) if i not in held]
    return Corpus(f"text files in {root}", key, train, val)


def load_corpus(path: str | os.PathLike[str] | None = None) -> Corpus:
    """The corpus at ``path``, else ``$LABSWARM_CORPUS``, else the embedded Shakespeare."""
    if path is None:
        path = os.environ.get("LABSWARM_CORPUS", "").strip() or None
    if path is None:
        return load_embedded()
    return load_path(Path(path).expanduser().resolve())


# ---------------------------------------------------------------------------
# Tokenizers: bytes (256 symbols, the default) or BPE trained on the training split
# ---------------------------------------------------------------------------


class ByteTokenizer:
    """UTF-8 bytes as tokens: every token is exactly one byte."""

    name = "byte"
    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self) -> torch.Tensor:
        return torch.ones(self.vocab_size, dtype=torch.int64)


class BPETokenizer:
    """A byte-level BPE (GPT-4 style split pattern) trained with rustbpe, run by tiktoken."""

    def __init__(self, pattern: str, ranks: dict[bytes, int]) -> None:
        import tiktoken

        self.pattern = pattern
        self.ranks = ranks
        self.vocab_size = len(ranks)
        self.name = f"bpe{self.vocab_size}"
        self.enc = tiktoken.Encoding(
            name=self.name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
        )

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.enc.encode_ordinary(text), dtype=np.uint32)

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self.enc.encode_ordinary_batch(texts)

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return self.enc.decode([int(i) for i in ids])

    def token_bytes(self) -> torch.Tensor:
        lengths = [0] * self.vocab_size
        for tok, rank in self.ranks.items():
            lengths[rank] = len(tok)
        return torch.tensor(lengths, dtype=torch.int64)

    def save(self, path: Path) -> None:
        ranks = {base64.b64encode(t).decode("ascii"): r for t, r in self.ranks.items()}
        _atomic_write(path, json.dumps({"pattern": self.pattern, "ranks": ranks}).encode())

    @classmethod
    def load(cls, path: Path) -> BPETokenizer:
        obj = json.loads(path.read_text(encoding="utf-8"))
        ranks = {base64.b64decode(t): int(r) for t, r in obj["ranks"].items()}
        return cls(obj["pattern"], ranks)

    @classmethod
    def train(cls, texts: Iterator[str], vocab_size: int) -> BPETokenizer:
        import rustbpe

        trainer = rustbpe.Tokenizer()
        trainer.train_from_iterator(texts, vocab_size)
        ranks = {bytes(tok): int(rank) for tok, rank in trainer.get_mergeable_ranks()}
        return cls(trainer.get_pattern(), ranks)


Tokenizer = ByteTokenizer | BPETokenizer


def cache_dir() -> Path:
    root = os.environ.get("LABSWARM_CACHE_DIR", "").strip()
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "labswarm"


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write via a temporary file and rename, so concurrent runs never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get_tokenizer(kind: str, vocab_size: int, corpus: Corpus) -> Tokenizer:
    """``"byte"``, or ``"bpe"`` trained on the training split (cached on disk by corpus)."""
    if kind == "byte":
        return ByteTokenizer()
    if kind != "bpe":
        raise SystemExit(f"unknown tokenizer {kind!r}: expected 'byte' or 'bpe'")
    if not 256 < vocab_size <= 1 << 20:
        raise SystemExit(f"BPE vocabulary size {vocab_size} must be in (256, 2**20]")
    path = cache_dir() / f"bpe-{corpus.key}-{vocab_size}.json"
    if path.exists():
        try:
            return BPETokenizer.load(path)
        except (OSError, ValueError, KeyError) as exc:  # damaged cache: rebuild it
            print(f"warning: rebuilding unreadable BPE cache {path}: {exc}", file=sys.stderr)
    tok = BPETokenizer.train(corpus.train_text_iter(), vocab_size)
    tok.save(path)
    return tok


# ---------------------------------------------------------------------------
# Data: token arrays, the training loader
# ---------------------------------------------------------------------------


@dataclass
class Data:
    """Everything ``train.py`` needs from the harness."""

    corpus: Corpus
    tokenizer: Tokenizer
    train_tokens: np.ndarray  # 1-D, documents joined by DOC_SEPARATOR
    val_tokens: np.ndarray  # 1-D, the fixed validation text
    val_bytes: int  # UTF-8 bytes of the validation text
    token_bytes: torch.Tensor = field(repr=False)  # bytes per token id


def _token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.uint32


def _encode_docs(tok: Tokenizer, texts: Iterator[str]) -> np.ndarray:
    dtype = _token_dtype(tok.vocab_size)
    parts: list[np.ndarray] = []
    sep = tok.encode(DOC_SEPARATOR).astype(dtype)
    batch: list[str] = []

    def flush() -> None:
        encoded = (
            tok.encode_many(batch)
            if isinstance(tok, BPETokenizer)
            else [tok.encode(t) for t in batch]
        )
        for ids in encoded:
            if parts:
                parts.append(sep)
            parts.append(np.asarray(ids, dtype=dtype))
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= 1024:
            flush()
    flush()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def load_data(device: torch.device, tokenizer: str = "byte", vocab_size: int = 4096) -> Data:
    """Load the corpus, build the tokenizer and encode both splits."""
    corpus = load_corpus()
    tok = get_tokenizer(tokenizer, vocab_size, corpus)
    val_text = corpus.val_text(EVAL_BYTES[device.type])
    if isinstance(tok, ByteTokenizer):
        train_tokens = _encode_docs(tok, corpus.train_text_iter())
    else:
        cached = cache_dir() / f"tokens-{corpus.key}-{tok.name}-train.npy"
        if cached.exists():
            train_tokens = np.load(cached)
        else:
            train_tokens = _encode_docs(tok, corpus.train_text_iter())
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=cached.name, suffix=".npy")
            os.close(fd)
            np.save(tmp, train_tokens)
            os.replace(tmp, cached)
    val_tokens = tok.encode(val_text).astype(_token_dtype(tok.vocab_size))
    if len(train_tokens) < 2 or len(val_tokens) < 2:
        raise CorpusError(f"{corpus.source}: too little text to train and validate")
    return Data(
        corpus=corpus,
        tokenizer=tok,
        train_tokens=train_tokens,
        val_tokens=val_tokens,
        val_bytes=len(val_text.encode("utf-8")),
        token_bytes=tok.token_bytes(),
    )


def train_loader(
    tokens: np.ndarray, batch_size: int, seq_len: int, device: torch.device, seed: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of random windows: inputs ``(B, T)`` and next-token targets ``(B, T)``."""
    if len(tokens) <= seq_len + 1:
        raise SystemExit(f"training split has {len(tokens)} tokens, fewer than SEQ_LEN+2")
    rng = np.random.default_rng(seed)
    offsets = np.arange(seq_len + 1)
    pin = device.type == "cuda"
    while True:
        starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
        window = torch.from_numpy(tokens[starts[:, None] + offsets].astype(np.int64))
        if pin:
            window = window.pin_memory()
        window = window.to(device, non_blocking=True)
        yield window[:, :-1], window[:, 1:]


# ---------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------


class NonCausalError(RuntimeError):
    """The model's predictions at a position depend on tokens after it (it reads ahead)."""


@torch.no_grad()
def causality_violation(
    model: torch.nn.Module,
    tokens: np.ndarray,
    vocab_size: int,
    seq_len: int,
    device: torch.device,
) -> str | None:
    """Why ``model`` is not causal, or None if it passes the check.

    Takes the first ``CAUSAL_WINDOWS`` windows of ``seq_len`` tokens; for ``CAUSAL_POSITIONS``
    positions t spread over the window (the first included), replaces every token after t by
    a random other token and compares the logits at positions ``<= t`` with the unperturbed
    ones. A change beyond ``CAUSAL_TOLERANCE`` (``CAUSAL_TOLERANCE_AUTOCAST`` inside a
    half-precision autocast) times the logits' scale (at least 1), plus eight times the
    difference between two identical forward passes (a non-deterministic device), is a
    violation. A model whose logits are not finite is left to the metric.
    """
    stream = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    width = min(seq_len, len(stream))
    if width < 2 or vocab_size < 2:
        return None
    n = max(1, min(CAUSAL_WINDOWS, len(stream) // width))
    x = torch.stack([stream[i * width : (i + 1) * width] for i in range(n)]).to(device)
    reference = model(x).float()
    if not bool(torch.isfinite(reference).all()):
        return None
    floor = (model(x).float() - reference).abs().max().item()
    half = torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) in (
        torch.bfloat16,
        torch.float16,
    )
    relative = CAUSAL_TOLERANCE_AUTOCAST if half else CAUSAL_TOLERANCE
    tolerance = relative * max(1.0, reference.abs().max().item()) + 8 * floor
    gen = torch.Generator().manual_seed(0)
    positions = sorted({round(p) for p in np.linspace(0, width - 2, CAUSAL_POSITIONS)})
    for t in positions:
        shift = torch.randint(1, vocab_size, (n, width - t - 1), generator=gen).to(device)
        perturbed = x.clone()
        perturbed[:, t + 1 :] = (x[:, t + 1 :] + shift) % vocab_size
        change = (model(perturbed).float()[:, : t + 1] - reference[:, : t + 1]).abs().max()
        if not change.item() <= tolerance:
            return (
                f"non-causal: predictions at position {t} changed when tokens after {t} "
                f"changed (largest logit change {change.item():.3g}, tolerance "
                f"{tolerance:.3g}); a model may only read earlier tokens"
            )
    return None


def report_result(entry: dict[str, object]) -> None:
    """Append ``entry`` as one JSON line to ``$LABSWARM_RESULT`` (nothing when unset)."""
    path = os.environ.get(RESULT_ENV, "").strip()
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


@torch.no_grad()
def evaluate_bpb(
    model: torch.nn.Module,
    tokens: np.ndarray,
    token_bytes: torch.Tensor,
    seq_len: int,
    batch_size: int,
    device: torch.device,
) -> float:
    """Validation bits per byte: summed cross-entropy (nats) over every target token, divided
    by ln 2 times the summed UTF-8 bytes of those targets.

    ``model(x)`` must return logits ``(B, T, vocab)`` for inputs ``(B, T)``. The token stream
    is cut into consecutive, non-overlapping windows of ``seq_len`` inputs; every token but the
    first is a target exactly once, so the result does not depend on ``batch_size`` and is
    deterministic for a given model. Independent of the tokenizer: the denominator is bytes.

    First the model must pass :func:`causality_violation`; one that reads ahead raises
    :class:`NonCausalError`. Either outcome is appended to ``$LABSWARM_RESULT`` when set
    (``{"metric": "val_bpb", "value": ...}`` or ``{"metric": "val_bpb", "error": ...}``):
    labswarm takes the metric from there.
    """
    was_training = model.training
    model.eval()
    problem = causality_violation(model, tokens, len(token_bytes), seq_len, device)
    if problem is not None:
        model.train(was_training)
        report_result({"metric": METRIC_NAME, "error": problem})
        raise NonCausalError(problem)
    stream = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    token_bytes = token_bytes.to(device)
    n_targets = len(stream) - 1
    starts = list(range(0, n_targets, seq_len))
    full = [s for s in starts if s + seq_len <= n_targets]
    tail = [s for s in starts if s + seq_len > n_targets]
    total_nats = torch.zeros((), dtype=torch.float64, device=device)
    total_bytes = torch.zeros((), dtype=torch.float64, device=device)

    def score(rows: torch.Tensor) -> None:
        nonlocal total_nats, total_bytes
        rows = rows.to(device)
        x, y = rows[:, :-1], rows[:, 1:]
        logits = model(x).float()
        nats = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        total_nats += nats.double().sum()  # summed in float64: exact to ~1e-12 at any length
        total_bytes += token_bytes[y].sum().double()

    for i in range(0, len(full), batch_size):
        chunk = full[i : i + batch_size]
        score(torch.stack([stream[s : s + seq_len + 1] for s in chunk]))
    for s in tail:
        score(stream[s:].unsqueeze(0))
    model.train(was_training)
    nats, nbytes = total_nats.item(), total_bytes.item()
    if nbytes <= 0:
        raise ValueError("validation targets hold zero bytes")
    bpb = nats / (math.log(2) * nbytes)
    report_result({"metric": METRIC_NAME, "value": bpb})
    return bpb


def diverged(loss: float, vocab_size: int) -> bool:
    """True when a training loss is NaN/inf or far worse than guessing uniformly."""
    return not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * math.log(vocab_size)


# ---------------------------------------------------------------------------
# CLI: inspect the corpus and split, pre-train a BPE vocabulary
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Inspect the corpus; optionally build a BPE.")
    parser.add_argument("--bpe", type=int, metavar="VOCAB", help="train and cache a BPE")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    try:
        data = load_data(torch.device(args.device), "bpe" if args.bpe else "byte", args.bpe or 0)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    corpus = data.corpus
    train_bytes = sum(len(t.encode("utf-8")) for _, t in corpus.train)
    print(f"corpus: {corpus.source} (key {corpus.key})")
    print(f"train: {len(corpus.train)} documents, {train_bytes} bytes")
    print(f"val: {len(corpus.val)} documents: {', '.join(n for n, _ in corpus.val[:8])}")
    print(f"val scored on {args.device}: {data.val_bytes} bytes, {len(data.val_tokens)} tokens")
    print(f"tokenizer: {data.tokenizer.name}, {len(data.train_tokens)} training tokens")
    print(f"time budget: {TIME_BUDGET:g} s; cache: {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
