"""Recall by the idea (issue 15): after the proposer drafts, memory is searched with the
draft itself, and a draft that repeats a recorded run or a claim in flight goes back.

- :func:`draft_text`: what the draft says (its hypothesis, its knob changes in words);
- :func:`same_move`: two knob changes move the same knobs the same way;
- :func:`structural_matches`: traces on the base's lineage (the base and its ancestors as
  parents) that changed the same knobs in the same direction;
- :func:`near_duplicate`: the run or claim a draft nearly repeats, with the evidence.

The near-duplicate rule, and why (numbers in docs/agents.md, "Near duplicates"): the
candidates are the draft's nearest traces by ``Store.search`` (on this hardware class and
budget, run to an end, not the base or one of its ancestors, not a failure the champion has
outgrown) and the claims in flight; each is scored by the cosine of the draft's hypothesis
and its hypothesis, both embedded by the memory's model (a stored trace document carries
its outcome and error too, which dilutes it: a verbatim repeat of a crashed idea scores
0.58 against its document, 1.0 against its hypothesis). A candidate scoring at least
``threshold`` (default :data:`DEFAULT_NEAR_DUPLICATE`) is a near duplicate unless the
structure says otherwise: when both record knob changes they must move the same knobs the
same way (:func:`same_move`), else the numbers written in the two hypotheses must be the
same -- to the embedder "unembedding LR 0.005 to 0.006" and "... 0.006 to 0.005" are the
same sentence (0.998).

The check applies to free-form drafts only: a proposer whose name ends in ``builtin``
proposes numeric configurations on purpose near earlier ones (TPE); its programs meet the
exact duplicate check and the near-failure check, never this one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memory.base import Store
from memory.embed import Embedder
from memory.errors import NotFound
from memory.models import RAN_STATUSES, ClaimPublic, ExperimentPublic, Role, TraceQuery

# Measured (benchmarks/near_duplicate_threshold.py; docs/agents.md, "Near duplicates"): at
# 0.60, with the structure gate, all 12 rewordings of log lines are refused and 10 of 7,503
# pairs of different lines of the Karpathy log are (several of them the same experiment
# logged twice); at 0.70, 7 of 12 and 8. No threshold catches the blind paraphrases without
# refusing other ideas (theirs peak at 0.64, others' at 0.67).
DEFAULT_NEAR_DUPLICATE = 0.60
DEFAULT_NEAR_DUPLICATE_TRIES = 2  # near-duplicate refusals per draft before it passes
NEAR_LIMIT = 8  # hits of the draft's search that are checked and recalled
NEAR_OVERFETCH = 4  # searched: NEAR_LIMIT times this, before keeping ideas (and own runs)
IDEA_ROLES: tuple[Role, ...] = (Role.experiment, Role.seed)  # runs that try an idea
STRUCTURE_LIMIT = 50  # children read per base of the lineage
LINEAGE_DEPTH = 4  # the base and this many ancestors

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def draft_text(hypothesis: str, knobs: dict[str, Any]) -> str:
    """The draft as a search query: its hypothesis, then its knob changes in words."""
    moves = [f"{name} {_value(ch, 0)} to {_value(ch, 1)}" for name, ch in knobs.items()]
    return " ".join([hypothesis.strip(), *moves]).strip()


def _value(change: Any, i: int) -> Any:
    return change[i] if isinstance(change, list) and len(change) == 2 else change


def _direction(change: Any) -> Any:
    """How one knob change moves: +1 / -1 / 0 for numbers, else its new value."""
    old, new = _value(change, 0), _value(change, 1)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
    if numbers:
        return (new > old) - (new < old)
    return ("=", new)


def same_move(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True if knob changes ``a`` and ``b`` (``{name: [old, new]}``) change the same knobs
    in the same direction (numbers: up or down; others: to the same value)."""
    if not a or set(a) != set(b):
        return False
    return all(_direction(a[name]) == _direction(b[name]) for name in a)


def lineage_ids(store: Store, base: ExperimentPublic) -> list[str]:
    """The base's id and its ancestors' (nearest first, at most ``LINEAGE_DEPTH``)."""
    ids = [base.id]
    parent = base.parent_id
    while parent and len(ids) <= LINEAGE_DEPTH and parent not in ids:
        ids.append(parent)
        try:
            parent = store.get_trace(parent).parent_id
        except NotFound:
            break
    return ids


def structural_matches(
    store: Store,
    task: str,
    lineage: list[str],
    knobs: dict[str, Any],
    *,
    agent_id: str | None = None,
) -> list[ExperimentPublic]:
    """Traces built on the base or one of its ancestors (``lineage``) that changed the
    same knobs in the same direction as ``knobs`` (from ``agent_id`` only, if given)."""
    if not knobs:
        return []
    out: list[ExperimentPublic] = []
    for parent in lineage:
        query = TraceQuery(task=task, parent_id=parent, agent_id=agent_id, limit=STRUCTURE_LIMIT)
        out += [t for t in store.query_traces(query).data if same_move(knobs, t.knobs)]
    return out


def numbers(text: str) -> list[float]:
    """The numbers written in ``text``, in increasing order (``0.8 to 0.85`` and ``0.85
    instead of 0.8`` give the same)."""
    return sorted(float(x) for x in _NUMBER.findall(text))


def same_structure(
    knobs: dict[str, Any], hypothesis: str, other_knobs: dict[str, Any], other_hypothesis: str
) -> bool:
    """Whether two ideas near in meaning may be the same: the same knob move when both
    record knob changes, else the same numbers in their hypotheses."""
    if knobs and other_knobs:
        return same_move(knobs, other_knobs)
    return numbers(hypothesis) == numbers(other_hypothesis)


def similarities(model: Embedder, text: str, others: list[str]) -> list[float]:
    """Cosine of ``text`` with each of ``others`` (the model's vectors are unit length)."""
    if not others:
        return []
    first, *rest = model.embed([text, *others])
    return [sum(a * b for a, b in zip(first, v, strict=True)) for v in rest]


@dataclass(frozen=True)
class NearDuplicate:
    """What a draft nearly repeats: a recorded run (``trace``) or a claim in flight."""

    matched_id: str
    why: str  # the evidence, in words, for the proposer and the refusal's reason
    score: float  # cosine of the two hypotheses
    trace: ExperimentPublic | None = None
    claim: ClaimPublic | None = None


def _run_evidence(t: ExperimentPublic, score: float, metric_name: str) -> str:
    metric = f", {metric_name} {t.metric:.6g}" if t.metric is not None else ""
    failure = f": {t.error[:160]}" if t.error else ""
    return (
        f"near duplicate of trace {t.id} (similarity {score:.2f}; {t.status.value}{metric}"
        f"{failure}): {t.hypothesis[:200]!r} -- propose a different idea"
    )


def _claim_evidence(c: ClaimPublic, score: float) -> str:
    return (
        f"near duplicate of claim {c.id} (similarity {score:.2f}), running now on "
        f"{c.agent_id or 'another agent'}: {c.hypothesis[:200]!r} -- propose a different idea"
    )


def candidate_runs(
    hits: Iterable[ExperimentPublic],
    *,
    lineage: list[str],
    base_fingerprint: str,
    hardware: str,
    budget: float | None,
    stale: set[str],
) -> list[ExperimentPublic]:
    """The recorded runs among ``hits`` that a draft could repeat: ideas run to an end on
    this hardware class and budget, not the base's lineage, not outgrown failures."""
    out = []
    for t in hits:
        if t.status not in RAN_STATUSES or t.role not in IDEA_ROLES:
            continue
        if t.hardware != hardware or t.budget_s != budget:
            continue  # measured elsewhere: a prior, which may be run here
        if t.id in lineage or t.fingerprint == base_fingerprint or t.id in stale:
            continue
        out.append(t)
    return out


def candidate_claims(
    claims: Iterable[ClaimPublic], *, hardware: str, budget: float | None
) -> list[ClaimPublic]:
    """Claims in flight on this hardware class and budget (older claims record neither)."""
    return [
        c
        for c in claims
        if (not c.hardware or c.hardware == hardware)
        and (c.budget_s is None or budget is None or c.budget_s == budget)
    ]


def near_duplicate(
    model: Embedder,
    runs: list[ExperimentPublic],
    claims: list[ClaimPublic],
    *,
    hypothesis: str,
    knobs: dict[str, Any],
    threshold: float,
    metric_name: str,
) -> NearDuplicate | None:
    """The recorded run or claim in flight (from :func:`candidate_runs` and
    :func:`candidate_claims`) that the draft nearly repeats -- the most similar one at or
    above ``threshold`` with the same structure (module docstring) -- or None."""
    texts = [t.hypothesis for t in runs] + [c.hypothesis for c in claims]
    if not hypothesis.strip() or not texts:
        return None
    scores = similarities(model, hypothesis, texts)
    best: NearDuplicate | None = None
    best_score = threshold
    for i, score in enumerate(scores):
        if score < best_score:
            continue
        if i < len(runs):
            t = runs[i]
            if same_structure(knobs, hypothesis, t.knobs, t.hypothesis):
                best = NearDuplicate(t.id, _run_evidence(t, score, metric_name), score, trace=t)
                best_score = score
        else:
            c = claims[i - len(runs)]
            if same_structure(knobs, hypothesis, c.knobs, c.hypothesis):
                best = NearDuplicate(c.id, _claim_evidence(c, score), score, claim=c)
                best_score = score
    return best
