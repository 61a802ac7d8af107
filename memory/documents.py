"""The text that is embedded for each trace and finding (the "document").

A trace's document puts the idea first, so that a paraphrase of the idea lands near it:

1. the hypothesis (or, for imported logs, the description);
2. the knob changes as ``NAME old -> new`` plus the knob name spelled out in words with
   common ML abbreviations expanded (``MATRIX_LR`` -> "matrix learning rate");
3. the outcome in words (``kept: improved`` / ``discarded: not better`` / ``crashed``),
   with the metric (``val_bpb 0.9731``) and, for failures, the first line of the error;
4. the changed lines of the diff (``+``/``-`` lines only), trimmed, last because MiniLM
   reads at most 256 word pieces and the diff is the least paraphrasable part.

Every part is trimmed and so is the whole document (``MAX_DOCUMENT_CHARS``): MiniLM reads
only its first ~1,000 characters anyway, and the document is stored in the vector index,
so an untrimmed 30 MB hypothesis would cost the index (and its server) that much again.

A finding's document is its change, its outcome and the metric before -> after.

Knob glossary. A task's editable file names its knobs and often says what each one is in a
trailing comment (``DEPTH_CPU = 4  # transformer blocks``). ``knob_glossary(source)``
reads those lines as text (no import of the file, no agents code) into a ``Glossary``:
knob name -> its meaning. A glossary entry is matched in free text by the knob's name words
(``matrix LR`` meets ``MATRIX_LR``, ``depth 9`` meets ``DEPTH``) and the document then
carries the meaning in words, plus the direction of a numeric change
(``matrix LR 0.04 to 0.035`` -> "decrease"), so a query in plain words
("lower the learning rate of the Muon matrix parameters") lands near it. A trace's
glossary is the default one (the built-in task's ``trainer/train.py``, read as text) merged
with the knob lines of the trace's own diff, so runs of any task gloss their own knobs.

Log shorthand without a knob: abbreviations are spelled out (``WD`` -> "weight decay: an
l2 penalty on the weights", ``cautious``), and a per-layer attention pattern in letters
(``SSSL pattern``) is read as short-window (local) and long (global) layers.

``DOCUMENT_VERSION`` names this recipe (with a digest of the default glossary); the
vector index records it per collection, and ``labswarm memory reindex --full`` re-embeds
an index built by an older recipe (it still answers searches meanwhile).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from memory.models import ExperimentBase, FindingBase

# Abbreviations that appear in knob names and experiment notes, spelled out so that a
# query in plain words meets a knob name (and the other way round).
ABBREVIATIONS: dict[str, str] = {
    "lr": "learning rate",
    "wd": "weight decay: an l2 penalty on the weights",
    "bs": "batch size",
    "attn": "attention",
    "emb": "embedding",
    "embd": "embedding",
    "embed": "embedding",
    "ve": "value embedding",
    "mlp": "mlp feed-forward",
    "init": "initialization",
    "n": "number of",
    "seq": "sequence",
    "len": "length",
    "kv": "key value",
    "qk": "query key",
    "frac": "fraction",
    "rope": "rotary position embedding",
    "vram": "gpu memory",
    "ns": "newton-schulz orthogonalization",
    "dim": "width dimension",
    "lm": "language model",
    "warmup": "warmup: ramp the learning rate up at the start",
    "warmdown": "warmdown: decay the learning rate at the end",
    "softcap": "soft cap of the logits",
    "unembedding": "output projection",
    "muon": "muon optimizer",
    "tying": "sharing input and output embedding weights",
    "tied": "sharing input and output embedding weights",
    "beta1": "first moment momentum",
    "beta2": "second moment",
    "x0": "skip connection from the input embeddings",
    "resid": "residual",
    "cautious": "cautious: masked to where the update and the weight agree in sign",
    "normuon": "normalized muon optimizer",
    "lambda": "learned scalar multiplier",
    "proj": "projection",
    "std": "standard deviation",
}

OUTCOME_WORDS: dict[str, str] = {
    "keep": "kept: improved the metric",
    "discard": "discarded: not better",
    "crash": "crashed: failed with no metric",
    "timeout": "timed out: killed at the time limit",
    "invalid": "invalid: the change could not be applied",
    "duplicate": "duplicate: this program already ran",
    "interrupted": "interrupted before it finished",
    "near_duplicate": "near duplicate: refused, too like an idea already tried or in flight",
    "note": "note",
}

_WORD = re.compile(r"[A-Za-z]+\d*|\d+(?:\.\d+)?")
_LETTERS_DIGITS = re.compile(r"([a-z]+)(\d+)")
_MAX_DIFF_CHARS = 600
_MAX_PART_CHARS = 1000  # hypothesis, knob list, finding change
MAX_DOCUMENT_CHARS = 4000  # above the sum of the trimmed parts: the outcome always stays


def spell_out(text: str) -> str:
    """``MATRIX_LR`` -> ``matrix learning rate``; ``VE WD`` -> ``value embedding weight decay``."""
    return " ".join(_spelled(w.lower()) for w in _WORD.findall(text.replace("_", " ")))


def _spelled(word: str) -> str:
    """One word spelled out: an abbreviation that ends in digits is looked up whole first
    (``x0``, ``beta1``), else its letters are (``lr2`` -> "learning rate 2")."""
    if word in ABBREVIATIONS:
        return ABBREVIATIONS[word]
    m = _LETTERS_DIGITS.fullmatch(word)
    if m:
        return f"{ABBREVIATIONS.get(m.group(1), m.group(1))} {m.group(2)}"
    return word


def glossed(text: str, glossary: Glossary | None = None) -> str:
    """``text`` followed by its knobs' meanings (``glossary``, default: the built-in
    task's), the direction of its numeric changes, and its abbreviations and SNAKE_CASE
    names in words, if any: ``"matrix LR 0.04 to 0.035"`` -> ``"matrix LR 0.04 to 0.035
    (matrix learning rate: Muon; decrease; learning rate)"``."""
    notes: list[str] = []
    for entry in (default_glossary() if glossary is None else glossary).lookup(text):
        note = entry.note()
        if note not in notes:
            notes.append(note)
    notes.extend(w for w in direction_words(text) if w not in notes)
    notes.extend(w for w in window_patterns(text) if w not in notes)
    for token in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text):
        if "_" in token or token.lower() in ABBREVIATIONS:
            words = spell_out(token)
            if words != token.lower() and words not in notes:
                notes.append(words)
    return f"{text} ({'; '.join(notes)})" if notes else text


# ---------------------------------------------------------------------------
# Knob glossary
# ---------------------------------------------------------------------------

# How a word is compared when a knob name is looked for in text: abbreviations and their
# spelled-out forms meet ("embedding LR" == "EMBED_LR"), plurals meet singulars.
_MATCH_FORMS: dict[str, tuple[str, ...]] = {
    "lr": ("learning", "rate"),
    "wd": ("weight", "decay"),
    "bs": ("batch", "size"),
    "emb": ("embed",),
    "embd": ("embed",),
    "embedding": ("embed",),
    "attn": ("attention",),
    "seq": ("sequence",),
    "len": ("length",),
    "n": ("number",),
    "num": ("number",),
    "frac": ("fraction",),
    "init": ("initialization",),
    "dim": ("width",),
}
# How a knob's name is written out in a note (``EMBED_LR`` -> "embed learning rate").
_NAME_FORMS = {
    "lr": "learning rate",
    "wd": "weight decay",
    "bs": "batch size",
    "n": "number of",
    "num": "number of",
    "frac": "fraction",
    "seq": "sequence",
    "len": "length",
    "attn": "attention",
    "emb": "embedding",
    "embd": "embedding",
    "embed": "embedding",
    "init": "initialization",
}
_VARIANT_WORDS = frozenset({"cpu", "cuda", "gpu", "tpu", "mps"})  # DEPTH_CPU is DEPTH
# A trailing word that a log leaves out when it names a knob ("warmdown 0.5 to 0.7" is
# WARMDOWN_RATIO): the name is also matched without it.
_GENERIC_TAIL = frozenset({"ratio", "fraction", "size", "base", "value", "steps", "number"})
_LETTERS = re.compile(r"[a-z]+")
_KNOB_LINE = re.compile(
    r"^([A-Z][A-Z0-9_]*)\s*(?::[^=#]*)?=\s*"
    r"(-?[0-9][0-9_.eE+-]*|\"[^\"]*\"|'[^']*'|True|False|\([-0-9.,eE+\s]*\))"
    r"\s*(?:#\s*(.*?))?\s*$"
)
# A unit (``512k``, ``4x``, ``10%``) counts only where it does not start a word: the "k"
# of "0.035 keeps" or the "m" of "6 max" is not a multiplier.
_UNIT = r"(?:\s*([kKmM]|x|%)(?![A-Za-z]))?"
_CHANGE = re.compile(rf"(-?\d+(?:\.\d+)?){_UNIT}\s*(?:to|->|\u2192)\s*(-?\d+(?:\.\d+)?){_UNIT}")
_SCALE = {"k": 1e3, "m": 1e6}
INCREASE_WORDS = "increase"
DECREASE_WORDS = "decrease"


def match_words(text: str) -> list[str]:
    """Words of ``text`` in the form knob names are compared in."""
    out: list[str] = []
    for word in _LETTERS.findall(text.lower().replace("_", " ")):
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.extend(_MATCH_FORMS.get(word, (word,)))
    return out


def _contains(words: list[str], seq: tuple[str, ...]) -> bool:
    n = len(seq)
    return n > 0 and any(tuple(words[i : i + n]) == seq for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class GlossaryEntry:
    """One knob: its name (without a hardware suffix) and what its comment says."""

    name: str
    meaning: str = ""

    @cached_property
    def words(self) -> tuple[str, ...]:
        return tuple(w for w in match_words(self.name) if w not in _VARIANT_WORDS)

    @cached_property
    def short(self) -> tuple[str, ...]:
        """The name's words without a generic last word (``WARMDOWN_RATIO`` -> warmdown)."""
        words = self.words
        return words[:-1] if len(words) > 1 and words[-1] in _GENERIC_TAIL else words

    def note(self) -> str:
        """``"depth: transformer blocks"``, ``"matrix learning rate: Muon"``."""
        spelled = " ".join(
            _NAME_FORMS.get(w, w)
            for w in self.name.lower().split("_")
            if w and w not in _VARIANT_WORDS
        )
        return f"{spelled}: {self.meaning}" if self.meaning else spelled


@dataclass(frozen=True)
class Glossary:
    """Knob name -> meaning, for one task (or the default). Immutable; ``merged`` combines."""

    entries: tuple[GlossaryEntry, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, meanings: Mapping[str, str]) -> Glossary:
        return cls(tuple(GlossaryEntry(n, m) for n, m in meanings.items()))

    def merged(self, other: Glossary) -> Glossary:
        """Both glossaries; for a name in both, ``other``'s non-empty meaning wins."""
        if not other.entries:
            return self
        by_name = {e.name: e for e in self.entries}
        for e in other.entries:
            if e.meaning or e.name not in by_name:
                by_name[e.name] = e
        return Glossary(tuple(by_name.values()))

    @cached_property
    def _word_counts(self) -> dict[str, int]:
        """How many names each word of a short name appears in."""
        counts: dict[str, int] = {}
        for e in self.entries:
            for w in set(e.short):
                counts[w] = counts.get(w, 0) + 1
        return counts

    def digest(self) -> str:
        text = "\n".join(
            f"{e.name}\t{e.meaning}" for e in sorted(self.entries, key=lambda e: e.name)
        )
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    def lookup(self, text: str) -> list[GlossaryEntry]:
        """Entries named in ``text``: by all the words of the name in order, by the name
        without a generic last word, or by a distinctive last word (5+ letters, in no other
        name) such as ``softcap`` for ``LOGIT_SOFTCAP``."""
        words = match_words(text)
        if not words:
            return []
        lasts = self._word_counts
        present = set(words)
        found: list[GlossaryEntry] = []
        for e in self.entries:
            short = e.short
            if not short or short[-1] not in present:
                continue  # cheap test first: every rule needs the short name's last word
            if (
                _contains(words, e.words)
                or _contains(words, short)
                or (len(short[-1]) >= 5 and lasts[short[-1]] == 1)
            ):
                found.append(e)
        # a longer name wins over a name inside it (MATRIX_LR over a bare LR knob)
        return [
            e
            for e in found
            if not any(
                o is not e and len(o.words) > len(e.words) and _contains(list(o.words), e.words)
                for o in found
            )
        ]


def knob_glossary(source: str | Iterable[str]) -> Glossary:
    """The knobs of an editable file's text (or of diff lines): module-level
    ``UPPER_NAME = literal  # comment`` lines; names with ``SEED`` are left out (as the
    knob finder does), ``_CPU``/``_CUDA`` variants merge into one name with the first
    comment found."""
    lines = source.splitlines() if isinstance(source, str) else list(source)
    meanings: dict[str, str] = {}
    for line in lines:
        m = _KNOB_LINE.match(line)
        if not m or "SEED" in m.group(1):
            continue
        name = "_".join(p for p in m.group(1).split("_") if p.lower() not in _VARIANT_WORDS)
        if not name:
            continue
        meaning = (m.group(3) or "").strip()
        if not meanings.get(name):
            meanings[name] = meaning
    return Glossary.of(meanings)


def _diff_glossary(diff: str) -> Glossary:
    """Knob lines of a trace's own diff (the ``+``/``-`` and context lines)."""
    if not diff:
        return Glossary()
    lines = [
        ln[1:] for ln in diff.splitlines() if ln[:1] in "+- " and not ln.startswith(("+++", "---"))
    ]
    return knob_glossary(lines)


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    """The built-in task's knobs (``trainer/train.py``, read as text; empty if absent)."""
    try:
        from importlib.resources import files

        source = files("trainer").joinpath("train.py").read_text(encoding="utf-8")
    except (ImportError, OSError, ValueError):
        return Glossary()
    return knob_glossary(source)


@lru_cache(maxsize=1)
def document_version() -> str:
    """The document recipe (bump the number when the recipe changes) and a digest of the
    default glossary and the abbreviations, e.g. ``"5-1a2b3c4d"``."""
    words = "\n".join(f"{k}\t{v}" for k, v in sorted(ABBREVIATIONS.items()))
    digest = hashlib.sha1(f"{default_glossary().digest()}\n{words}".encode()).hexdigest()
    return f"5-{digest[:8]}"


# A per-layer attention pattern written as letters, one per layer of a repeating group:
# S = a short (local, sliding-window) layer, L = a long (global, full-context) one; read as
# such only in a text that says "pattern" or "window" ("SSL pretraining" is no pattern).
_WINDOW_PATTERN = re.compile(r"\b[SL]{3,}\b")
_PATTERN_WORDS = re.compile(r"\b(?:pattern|window)", re.IGNORECASE)


def window_patterns(text: str) -> list[str]:
    """``"SSSL pattern"`` -> ``"layer pattern: 3 short local sliding-window to 1 long global
    full-context"``, for each such pattern with both letters in ``text``."""
    if not _PATTERN_WORDS.search(text):
        return []
    out = []
    for m in _WINDOW_PATTERN.finditer(text):
        short, long_ = m.group().count("S"), m.group().count("L")
        if short and long_:
            out.append(
                f"layer pattern: {short} short local sliding-window to {long_} long "
                "global full-context"
            )
    return out


def _number(value: str, unit: str | None) -> float:
    return float(value) * _SCALE.get((unit or "").lower(), 1.0)


def direction_words(text: str) -> list[str]:
    """``"increase"``/``"decrease"`` for each distinct direction of the numeric
    changes in ``text`` (``0.04 to 0.035``, ``524K -> 262K``)."""
    out: list[str] = []
    for m in _CHANGE.finditer(text):
        old, new = _number(m.group(1), m.group(2)), _number(m.group(3), m.group(4) or m.group(2))
        word = INCREASE_WORDS if new > old else DECREASE_WORDS if new < old else ""
        if word and word not in out:
            out.append(word)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def knob_text(knobs: dict[str, Any], glossary: Glossary | None = None) -> str:
    """``MATRIX_LR 0.04 -> 0.05 (matrix learning rate: Muon; increase: ...)``: each knob
    edit with its meaning from ``glossary`` (default: the built-in task's) or its name in
    words, and the direction of a numeric change."""
    by_name = {e.name: e for e in (default_glossary() if glossary is None else glossary).entries}
    parts = []
    for name, change in knobs.items():
        base = "_".join(p for p in name.split("_") if p.lower() not in _VARIANT_WORDS)
        entry = by_name.get(base) or by_name.get(name)
        notes = [entry.note() if entry is not None else spell_out(name)]
        if isinstance(change, list | tuple) and len(change) == 2:
            old, new = change
            if _is_number(old) and _is_number(new) and old != new:
                notes.append(INCREASE_WORDS if new > old else DECREASE_WORDS)
            parts.append(f"{name} {_fmt(old)} -> {_fmt(new)} ({'; '.join(notes)})")
        else:
            parts.append(f"{name} = {_fmt(change)} ({'; '.join(notes)})")
    return "; ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _diff_lines(diff: str) -> str:
    lines = [
        ln
        for ln in diff.splitlines()
        if ln[:1] in "+-" and not ln.startswith(("+++", "---")) and ln[1:].strip()
    ]
    return " | ".join(ln.strip() for ln in lines)[:_MAX_DIFF_CHARS]


def trace_document(trace: ExperimentBase) -> str:
    """The embedded text of one trace (see the module docstring)."""
    parts: list[str] = []
    glossary = default_glossary().merged(_diff_glossary(trace.diff))
    idea = trace.hypothesis.strip()[:_MAX_PART_CHARS]
    if idea:
        parts.append(glossed(idea, glossary)[: 2 * _MAX_PART_CHARS])
    if trace.knobs:
        parts.append("Changes: " + knob_text(trace.knobs, glossary)[:_MAX_PART_CHARS])
    status = str(getattr(trace.status, "value", trace.status))
    outcome = OUTCOME_WORDS.get(status, status)
    if trace.metric is not None:
        outcome += f", {trace.metric_name} {trace.metric:.6g}"
    parts.append(f"Outcome: {outcome}")
    if trace.error.strip():
        parts.append("Error: " + trace.error.strip().splitlines()[0][:200])
    diff = _diff_lines(trace.diff)
    if diff:
        parts.append("Diff: " + diff)
    return ". ".join(parts)[:MAX_DOCUMENT_CHARS]


def finding_document(finding: FindingBase) -> str:
    """The embedded text of one finding."""
    parts = [glossed(finding.change.strip()[:_MAX_PART_CHARS])[: 2 * _MAX_PART_CHARS]]
    outcome = OUTCOME_WORDS.get(finding.outcome, finding.outcome)
    if finding.before is not None or finding.after is not None:
        before = "?" if finding.before is None else f"{finding.before:.6g}"
        after = "?" if finding.after is None else f"{finding.after:.6g}"
        outcome += f", {finding.metric_name} {before} -> {after}"
    parts.append(f"Outcome: {outcome}")
    if finding.hardware:
        parts.append(f"Hardware: {finding.hardware}")
    return ". ".join(parts)[:MAX_DOCUMENT_CHARS]
