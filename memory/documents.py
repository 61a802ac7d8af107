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
"""

from __future__ import annotations

import re
from typing import Any

from memory.models import ExperimentBase, FindingBase

# Abbreviations that appear in knob names and experiment notes, spelled out so that a
# query in plain words meets a knob name (and the other way round).
ABBREVIATIONS: dict[str, str] = {
    "lr": "learning rate",
    "wd": "weight decay",
    "bs": "batch size",
    "attn": "attention",
    "emb": "embedding",
    "embd": "embedding",
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
}

OUTCOME_WORDS: dict[str, str] = {
    "keep": "kept: improved the metric",
    "discard": "discarded: not better",
    "crash": "crashed: failed with no metric",
    "timeout": "timed out: killed at the time limit",
    "invalid": "invalid: the change could not be applied",
    "duplicate": "duplicate: this program already ran",
    "interrupted": "interrupted before it finished",
    "note": "note",
}

_WORD = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")
_MAX_DIFF_CHARS = 600
_MAX_PART_CHARS = 1000  # hypothesis, knob list, finding change
MAX_DOCUMENT_CHARS = 4000  # above the sum of the trimmed parts: the outcome always stays


def spell_out(text: str) -> str:
    """``MATRIX_LR`` -> ``matrix learning rate``; ``VE WD`` -> ``value embedding weight decay``."""
    words = [w.lower() for w in _WORD.findall(text.replace("_", " "))]
    return " ".join(ABBREVIATIONS.get(w, w) for w in words)


def glossed(text: str) -> str:
    """``text`` followed by its abbreviations and SNAKE_CASE names in words, if any:
    ``"EMBEDDING_LR 0.6 -> 0.8"`` -> ``"EMBEDDING_LR 0.6 -> 0.8 (embedding learning rate)"``."""
    notes: list[str] = []
    for token in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text):
        if "_" in token or token.lower() in ABBREVIATIONS:
            words = spell_out(token)
            if words != token.lower() and words not in notes:
                notes.append(words)
    return f"{text} ({'; '.join(notes)})" if notes else text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def knob_text(knobs: dict[str, Any]) -> str:
    parts = []
    for name, change in knobs.items():
        if isinstance(change, list | tuple) and len(change) == 2:
            old, new = change
            parts.append(f"{name} {_fmt(old)} -> {_fmt(new)} ({spell_out(name)})")
        else:
            parts.append(f"{name} = {_fmt(change)} ({spell_out(name)})")
    return "; ".join(parts)


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
    idea = trace.hypothesis.strip()[:_MAX_PART_CHARS]
    if idea:
        parts.append(glossed(idea)[: 2 * _MAX_PART_CHARS])
    if trace.knobs:
        parts.append("Changes: " + knob_text(trace.knobs)[:_MAX_PART_CHARS])
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
