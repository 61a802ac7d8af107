"""The near-duplicate threshold (``agents.idea.DEFAULT_NEAR_DUPLICATE``), measured.

A draft is refused as a near duplicate when the cosine of its hypothesis and a recorded
run's (MiniLM, ``agents.idea.similarities``) reaches the threshold AND the two agree in
structure (``agents.idea.same_structure``: the same numbers when neither records knob
changes). This script counts, per threshold:

- rewordings caught: 12 ideas of Karpathy's log (``../shared/data/autoresearch``) written
  again in other words with the same numbers (below) -- these should be refused;
- distinct log pairs flagged: every pair of distinct descriptions in the log -- these
  should pass (a few are the same experiment logged twice);
- the blind recall paraphrases (``benchmarks/recall_blind.jsonl``) against their own
  targets and against every other idea, by cosine alone.

    .venv/bin/python benchmarks/near_duplicate_threshold.py
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from agents.idea import same_structure
from memory.embed import get_embedder

REPO = Path(__file__).resolve().parents[1]
LOG = REPO.parent / "shared" / "data" / "autoresearch" / "karpathy-h100-mar8-results.tsv"
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8)
# the same idea, the same numbers, other words (written for this measurement)
REWORDINGS = {
    "halve batch 524K to 262K (more steps in 5 min)": (
        "cut the batch in half, 524K to 262K, to get more steps in the 5 minutes"
    ),
    "add 5% warmup": "add a 5% learning-rate warmup",
    "warmdown 0.5 to 0.7": "raise the warmdown fraction from 0.5 to 0.7",
    "RoPE base frequency 10K to 200K": "increase the rotary base frequency from 10K to 200K",
    "embedding LR 0.6 to 0.8": "raise the embedding learning rate from 0.6 to 0.8",
    "unembedding LR 0.004 to 0.008": "double the unembedding LR, 0.004 to 0.008",
    "softcap 15 to 20": "raise the logit softcap from 15 to 20",
    "weight decay 0.2 to 0.15": "lower weight decay from 0.2 to 0.15",
    "Adam beta1 0.8 to 0.85": "set Adam's beta1 to 0.85 instead of 0.8",
    "gradient clipping max_norm=1.0": "clip gradients at max norm 1.0",
    "Muon ns_steps 5 to 4": "use 4 Newton-Schulz steps in Muon instead of 5",
    "parallel attn+MLP (much worse)": "run attention and the MLP in parallel",
}


def main() -> None:
    rows = [line.rstrip("\n").split("\t") for line in LOG.open(encoding="utf-8")][1:]
    lines = sorted({r[4].strip() for r in rows})
    missing = [k for k in REWORDINGS if k not in lines]
    assert not missing, f"not in the log: {missing}"
    queries = [json.loads(x) for x in (REPO / "benchmarks" / "recall_blind.jsonl").open()]
    model = get_embedder("minilm")
    # every text embedded once; a cosine is the dot product of two unit vectors, summed
    # as ``agents.idea.similarities`` sums it
    texts = list(dict.fromkeys([*lines, *REWORDINGS.values(), *(q["query"] for q in queries)]))
    vectors = dict(zip(texts, model.embed(texts), strict=True))

    def cos(a: str, b: str) -> float:
        return sum(x * y for x, y in zip(vectors[a], vectors[b], strict=True))

    reworded = [(cos(new, old), old, new) for old, new in REWORDINGS.items()]
    pairs = [(cos(a, b), a, b) for a, b in itertools.combinations(lines, 2)]
    by_commit = {r[0]: r[4].strip() for r in rows}
    own: list[float] = []
    other: list[float] = []
    for q in queries:
        targets = {by_commit[c] for c in q["targets"]}
        scores = [cos(q["query"], line) for line in lines]
        own += [s for s, line in zip(scores, lines, strict=True) if line in targets]
        other += [s for s, line in zip(scores, lines, strict=True) if line not in targets]

    print(
        f"{len(REWORDINGS)} rewordings, {len(pairs)} distinct log pairs, "
        f"{len(own)} blind paraphrase/target pairs, {len(other)} blind/other pairs"
    )
    print("threshold  rewordings refused  log pairs refused  blind paraphrases >=  blind/other >=")
    for th in THRESHOLDS:
        caught = sum(s >= th and same_structure({}, a, {}, b) for s, a, b in reworded)
        flagged = sum(s >= th and same_structure({}, a, {}, b) for s, a, b in pairs)
        print(
            f"{th:9.2f}  {caught:10d}/{len(reworded):<7d}  {flagged:9d}/{len(pairs):<6d}  "
            f"{sum(s >= th for s in own):12d}/{len(own):<6d}  "
            f"{sum(s >= th for s in other):8d}/{len(other)}"
        )


if __name__ == "__main__":
    main()
