"""Semantic search of the SQL-backed store, with cheap structured filters at 100k items.

Traces are indexed in one Chroma collection per (task, status) -- a trace never changes
status -- so a task and/or status filter picks collections: each wanted collection is
queried for ``limit`` nearest ids, the hits are merged by score and only the winners' rows
are read from SQL. Findings have one collection per task (``""`` = any task, searched with
every task); an outcome filter on findings over-fetches and checks the outcome in SQL by
id. Chroma ``where`` clauses are never used (they cost 150-300 ms at 100k items on this
machine against ~5 ms for a plain query).

Hybrid selection. Each search takes a dense pool (``POOL`` nearest per kind, at least
``limit``), ranks the pool a second time by BM25 over the hits' documents (the embedded
text, glossed: see ``memory.documents``), and keeps the ``limit`` hits with the best
reciprocal-rank fusion of the two ranks (``RRF_K``; a hit sharing no word with the query
has no lexical rank). The kept hits are returned in cosine order, so ``SearchHit.score``
stays the cosine similarity, best first: fusion decides *which* hits come back, the
embedding decides their order. Words are lower-cased, English stop words dropped, IDF
over the pool. ``hybrid = False`` on a store turns the lexical part off (the benchmark's
dense arm).

Second opinion. A store embedded by MiniLM also has ``second_opinion``
(``memory.embed.ParaphraseScorer``): the dense rank that enters the fusion is then the
rank by the mean of MiniLM's cosine and the paraphrase model's over the same pool, so two
models must agree for a hit to rank high by meaning. Returned order and scores stay
MiniLM's. Measured on Karpathy's log (docs/memory.md, Recall): blind recall@5 20 -> 23 of
30. ``second_opinion = None`` turns it off (the benchmark's ``hybrid-minilm`` arm).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import col, select

from memory._sql import to_public_finding, to_public_trace
from memory.errors import InvalidInput
from memory.models import MAX_PAGE, Experiment, Finding, SearchHit, Status, check_args

_FIRST_FETCH = 40
_GROWTH = 4
POOL = 40  # dense candidates per kind that the lexical rank re-orders
RRF_K = 60
BM25_K1, BM25_B = 1.2, 0.75
STOP_WORDS = frozenset(
    "a an and are as at be by do does for from in into is it its no not of on or over so "
    "than that the then this to up down more less with".split()
)


_WORD = re.compile(r"[a-z0-9]+")


def lexical_words(text: str) -> list[str]:
    """Words compared by the lexical rank: lower-cased, stop words dropped (the document
    already carries its abbreviations spelled out, so no further normalisation: folding
    ``LR`` into "learning rate" on both sides measured worse on the development set)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def bm25(query: str, docs: Sequence[str]) -> list[float]:
    """Okapi BM25 of ``query`` against each of ``docs``, IDF computed over ``docs``."""
    tokens = [lexical_words(d) for d in docs]
    avg = sum(map(len, tokens)) / max(1, len(tokens)) or 1.0
    df = Counter(w for ts in tokens for w in set(ts))
    terms = set(lexical_words(query))
    scores = []
    for ts in tokens:
        tf = Counter(ts)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(ts) / avg)
        scores.append(
            sum(
                math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
                * tf[w]
                * (BM25_K1 + 1)
                / (tf[w] + norm)
                for w in terms
                if w in tf
            )
        )
    return scores


def fused_order(
    query: str, texts: Sequence[str], dense: Sequence[float] | None = None
) -> list[int]:
    """Indexes of ``texts`` (given in dense order, best first) by reciprocal-rank fusion
    of the dense rank and the BM25 rank; ties keep the given order. ``dense``: a score
    per text (higher is nearer) that ranks them by meaning instead of their given order."""
    lexical = bm25(query, texts)
    by_lexical = sorted((i for i, s in enumerate(lexical) if s > 0), key=lambda i: -lexical[i])
    by_dense = (
        range(len(texts)) if dense is None else sorted(range(len(texts)), key=lambda i: -dense[i])
    )
    fused = {i: 1 / (RRF_K + rank) for rank, i in enumerate(by_dense, start=1)}
    for rank, i in enumerate(by_lexical, start=1):
        fused[i] += 1 / (RRF_K + rank)
    return sorted(fused, key=lambda i: (-fused[i], i))


def meaning_scores(
    second_opinion: Any, query: str, hits: Sequence[SearchHit]
) -> list[float] | None:
    """The scores that rank a dense pool by meaning in the fusion: the mean of each hit's
    cosine (MiniLM's) and the second opinion's for the same text; None without a second
    opinion (the pool's own order, by cosine, then ranks it)."""
    if second_opinion is None:
        return None
    other = second_opinion.cosines(query, [h.text for h in hits])
    return [(h.score + c) / 2 for h, c in zip(hits, other, strict=True)]


class SearchMixin:
    """``search`` for ``SqlStore`` (uses its ``embedder``, ``index`` and ``_fetch``)."""

    embedder: Any
    index: Any
    hybrid: bool = True  # lexical re-selection of the dense pool (see the module docstring)
    second_opinion: Any = None  # a memory.embed.ParaphraseScorer (see the module docstring)
    _fetch: Callable[..., dict[str, Any]]  # SqlStore._fetch(model, ids, *where)
    _sync_index: Callable[[], None]
    _session: Callable[[], Any]

    def search(
        self,
        text: str,
        *,
        kinds: Sequence[str] = ("trace", "finding"),
        task: str | None = None,
        status: Sequence[Status] | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("search.text: must not be empty")
        check_args("search", text=text, task=task)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"search.limit: must be an integer in 1..{MAX_PAGE}, got {limit!r}")
        unknown = set(kinds) - {"trace", "finding"}
        if unknown or not kinds:
            raise InvalidInput(f"search.kinds: must be 'trace' and/or 'finding', got {kinds!r}")
        statuses: list[Status] | None = None
        if status is not None:
            try:
                statuses = [Status(s) for s in status]
            except ValueError as exc:
                raise InvalidInput(f"search.status: {exc}") from exc
        self._sync_index()  # find this process's own recent writes
        vector = self.embedder.embed([text])[0]
        pool = max(limit, POOL) if self.hybrid else limit
        hits: list[SearchHit] = []
        for kind in ("trace", "finding"):
            if kind in kinds:
                hits.extend(self._nearest(kind, vector, task, statuses, pool))
        hits.sort(key=lambda h: -h.score)
        if self.hybrid and len(hits) > limit:
            texts = [h.text for h in hits]
            dense = meaning_scores(self.second_opinion, text, hits)
            hits = [hits[i] for i in fused_order(text, texts, dense)[:limit]]
            hits.sort(key=lambda h: -h.score)
        return hits[:limit]

    def _nearest(
        self,
        kind: str,
        vector: list[float],
        task: str | None,
        statuses: list[Status] | None,
        limit: int,
    ) -> list[SearchHit]:
        if kind == "trace":
            return self._nearest_traces(vector, task, statuses, limit)
        if task is None:
            tasks = [t for t, _ in self.index.groups("finding")]
        else:
            tasks = [task] if task == "" else [task, ""]  # "" = findings for any task
        hits: list[SearchHit] = []
        for name in tasks:
            hits.extend(self._nearest_findings(name, vector, statuses, limit))
        return hits

    def _nearest_traces(
        self, vector: list[float], task: str | None, statuses: list[Status] | None, limit: int
    ) -> list[SearchHit]:
        """Traces live in one collection per (task, status): query the wanted ones with
        k=limit each, merge by score, load the winners' rows."""
        wanted = None if statuses is None else {s.value for s in statuses}
        if task is not None and wanted is not None:
            groups = [(task, s) for s in sorted(wanted)]
        else:
            groups = [
                (t, s)
                for t, s in self.index.groups("trace")
                if (task is None or t == task) and (wanted is None or s in wanted)
            ]
        found = [h for t, s in groups for h in self.index.query("trace", t, s, vector, limit)]
        found.sort(key=lambda h: -h.score)
        return self._hits("trace", found[:limit])

    def _nearest_findings(
        self, task: str, vector: list[float], statuses: list[Status] | None, limit: int
    ) -> list[SearchHit]:
        """Findings: one collection per task; an outcome filter over-fetches (findings are
        few) and checks the outcome in SQL by id, growing the fetch if too few pass."""
        allowed = None if statuses is None else {s.value for s in statuses}
        n = limit if allowed is None else max(_FIRST_FETCH, 4 * limit)
        while True:
            found = self.index.query("finding", task, "", vector, n)
            ids = [h.id for h in found]
            keep = set(ids) if allowed is None else self._matching_ids(Finding, ids, allowed)
            chosen = [h for h in found if h.id in keep][:limit]
            if len(chosen) == limit or len(found) < n:
                break
            n *= _GROWTH
        return self._hits("finding", chosen)

    def _hits(self, kind: str, chosen: Sequence[Any]) -> list[SearchHit]:
        """Index hits with their rows loaded from SQL, in the hits' order (a hit whose row
        is gone is a stale index entry and is left out)."""
        ids = [h.id for h in chosen]
        if kind == "trace":
            traces = self._fetch(Experiment, ids) if chosen else {}
            return [
                SearchHit(
                    kind="trace",
                    id=h.id,
                    score=h.score,
                    text=h.text,
                    experiment=to_public_trace(traces[h.id]),
                )
                for h in chosen
                if h.id in traces
            ]
        findings = self._fetch(Finding, ids) if chosen else {}
        return [
            SearchHit(
                kind="finding",
                id=h.id,
                score=h.score,
                text=h.text,
                finding=to_public_finding(findings[h.id]),
            )
            for h in chosen
            if h.id in findings
        ]

    def _matching_ids(self, model: Any, ids: Sequence[str], allowed: set[str]) -> set[str]:
        """The ids among ``ids`` whose status (traces) or outcome (findings) is allowed.

        Only the primary key is used in SQL; the status test happens here, because with
        ``status IN (...)`` in the WHERE clause SQLite may scan the status index instead
        (~100 ms at 100k rows)."""
        field = model.status if model is Experiment else model.outcome
        out: set[str] = set()
        with self._session() as session:
            for i in range(0, len(ids), 500):
                stmt = select(model.id, field).where(col(model.id).in_(ids[i : i + 500]))
                for rid, value in session.exec(stmt):
                    if str(getattr(value, "value", value)) in allowed:
                        out.add(rid)
        return out
