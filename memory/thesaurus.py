"""Names of one thing in this field, for the lexical side of a search.

A researcher writes "L2 regularization" where a log wrote "WD", "cooldown" where it wrote
"warmdown", "output head" where it wrote "lm_head". The dense pool finds such texts by
meaning when the embedding knows the two names; the lexical rank (BM25 over the pool,
``memory._search``) finds them only by shared words. The thesaurus gives the lexical rank
those words: a query that holds one phrase of a group is searched lexically with the
group's other phrases added (``Thesaurus.expand``). Only the lexical query changes: the
query embedding, the stored documents and their vectors do not, so no memory needs
re-embedding when the thesaurus changes.

The groups are in ``memory/thesaurus.json`` (``{"groups": [["weight decay", "l2
regularization"], ...]}``): general equivalences of the field, written from the vocabulary
of Karpathy's log and the built-in task's knob names, not from any query set. A phrase
matches where its words occur in order in the text's words, compared by a light stem
(``regularize`` = ``regularization``, ``embeddings`` = ``embedding``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib.resources import files
from pathlib import Path

from memory.errors import InvalidInput

_WORD = re.compile(r"[a-z0-9]+")
# longest first: the first suffix that leaves a stem of 3+ letters is cut
_SUFFIXES = (
    "izations",
    "ization",
    "izing",
    "ized",
    "izes",
    "ize",
    "ations",
    "ation",
    "ings",
    "ing",
    "ied",
    "ies",
    "ed",
    "es",
    "s",
)
MAX_PHRASE_WORDS = 6


def stem(word: str) -> str:
    """``word`` without one common English suffix (a comparison key, not a word)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _WORD.findall(text.lower()))


def _occurs(phrase: tuple[str, ...], words: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Thesaurus:
    """Groups of phrases that name the same thing."""

    groups: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, data: object, where: str) -> Thesaurus:
        """Groups from a decoded ``{"groups": [[phrase, ...], ...]}``; a bad field raises
        ``InvalidInput`` naming ``where`` and the group."""
        if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
            raise InvalidInput(f"{where}: expected an object with a list 'groups'")
        groups: list[tuple[str, ...]] = []
        for i, group in enumerate(data["groups"]):
            if not isinstance(group, list) or len(group) < 2:
                raise InvalidInput(f"{where}: groups[{i}] must be a list of 2 or more phrases")
            for phrase in group:
                if not isinstance(phrase, str) or not 1 <= len(_stems(phrase)) <= MAX_PHRASE_WORDS:
                    raise InvalidInput(
                        f"{where}: groups[{i}]: {phrase!r} is not a phrase of 1 to "
                        f"{MAX_PHRASE_WORDS} words"
                    )
            groups.append(tuple(phrase.strip().lower() for phrase in group))
        return cls(tuple(groups))

    @classmethod
    def load(cls, path: Path) -> Thesaurus:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{path}: cannot read the thesaurus: {exc}") from exc
        return cls.parse(data, str(path))

    @cached_property
    def _keys(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        return tuple(tuple(_stems(p) for p in group) for group in self.groups)

    def other_names(self, text: str) -> str:
        """The other phrases of every group one of whose phrases ``text`` holds, each once,
        joined by spaces ("" when it holds none)."""
        words = _stems(text)
        added: list[str] = []
        for group, keys in zip(self.groups, self._keys, strict=True):
            held = [_occurs(k, words) for k in keys]
            if any(held):
                added.extend(p for p, h in zip(group, held, strict=True) if not h)
        return " ".join(dict.fromkeys(added))


@lru_cache(maxsize=1)
def default_thesaurus() -> Thesaurus:
    """The thesaurus shipped with labswarm (``memory/thesaurus.json``)."""
    source = files("memory").joinpath("thesaurus.json")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"memory/thesaurus.json: cannot read the thesaurus: {exc}") from exc
    return Thesaurus.parse(data, "memory/thesaurus.json")
