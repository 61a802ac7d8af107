"""Programs: the content of a task's editable files, their fingerprint, edits and diffs.

A program is a mapping ``relative path -> text``. Its fingerprint is the SHA-256 of the
normalised files (line endings unified, trailing whitespace dropped, one final newline),
so programs that differ only in invisible whitespace are the same program.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field


class EditError(ValueError):
    """An edit cannot be applied; ``reason`` says why in words fed back to a proposer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Edit(BaseModel):
    """Replace the one occurrence of ``search`` in ``path`` with ``replace``."""

    path: str = Field(description="editable file, relative to the task directory")
    search: str = Field(description="exact text that occurs exactly once in the file")
    replace: str = Field(description="text that replaces it")


def normalise(text: str) -> str:
    """Unify line endings, drop trailing whitespace, end with exactly one newline."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Program:
    """Editable files of a task, by POSIX relative path. Immutable; edits make new ones."""

    files: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, files: Mapping[str, str]) -> Program:
        return cls(tuple(sorted(files.items())))

    @classmethod
    def read(cls, root: Path, editable: Iterable[str]) -> Program:
        """Read the editable files under ``root``."""
        return cls.of({rel: (root / rel).read_text(encoding="utf-8") for rel in editable})

    def as_dict(self) -> dict[str, str]:
        return dict(self.files)

    def get(self, path: str) -> str:
        for rel, text in self.files:
            if rel == path:
                return text
        raise KeyError(path)

    def replace_file(self, path: str, text: str) -> Program:
        files = self.as_dict()
        files[path] = text
        return Program.of(files)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for rel, text in self.files:
            data = normalise(text).encode("utf-8")
            h.update(rel.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
        return h.hexdigest()

    def write(self, root: Path) -> None:
        """Write the files under ``root`` (a workspace)."""
        for rel, text in self.files:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def check_compiles(program: Program) -> None:
    """Raise ``EditError`` if a Python file of ``program`` does not compile."""
    for rel, text in program.files:
        if rel.endswith(".py"):
            try:
                compile(text, rel, "exec")
            except SyntaxError as exc:
                raise EditError(
                    f"{rel} does not compile after the edit: line {exc.lineno}: {exc.msg}"
                ) from None


def apply_edits(program: Program, edits: Iterable[Edit]) -> Program:
    """Apply search/replace edits in order. Every edit must name an editable file of the
    program and a search text that occurs exactly once; the result must compile."""
    files = program.as_dict()
    count = 0
    for i, edit in enumerate(edits, 1):
        count += 1
        path = edit.path.strip().removeprefix("./")
        if path not in files:
            allowed = ", ".join(sorted(files))
            raise EditError(
                f"edit {i}: {edit.path!r} is not an editable file (editable: {allowed})"
            )
        if not edit.search:
            raise EditError(f"edit {i}: the search text is empty")
        text = files[path]
        hits = text.count(edit.search)
        if hits != 1:
            where = "does not occur" if hits == 0 else f"occurs {hits} times"
            raise EditError(f"edit {i}: the search text {where} in {path}; it must occur once")
        files[path] = text.replace(edit.search, edit.replace, 1)
    if count == 0:
        raise EditError("the proposal has no edits")
    result = Program.of(files)
    if result.fingerprint == program.fingerprint:
        raise EditError("the edits change nothing: the program is identical to its base")
    check_compiles(result)
    return result


def diff(old: Program, new: Program) -> str:
    """Unified diff from ``old`` to ``new`` over all files (``a/`` and ``b/`` prefixes)."""
    old_files, new_files = old.as_dict(), new.as_dict()
    chunks: list[str] = []
    for rel in sorted(set(old_files) | set(new_files)):
        a = normalise(old_files.get(rel, "")).splitlines(keepends=True)
        b = normalise(new_files.get(rel, "")).splitlines(keepends=True)
        if a != b:
            chunks.extend(difflib.unified_diff(a, b, f"a/{rel}", f"b/{rel}", n=3))
    return "".join(chunks)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_diff(program: Program, patch: str) -> Program:
    """Apply a unified diff made by :func:`diff` to ``program`` (exact context only).

    Used to rebuild a recorded program from its lineage; raises ``EditError`` if the
    context does not match."""
    if not patch.strip():
        return program
    files = {rel: normalise(text) for rel, text in program.files}
    lines = patch.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not lines[i].startswith("--- "):
            i += 1
            continue
        rel = lines[i + 1][4:].strip()
        rel = rel[2:] if rel.startswith("b/") else rel
        if rel not in files:
            raise EditError(f"patch names {rel!r}, not a file of the program")
        src = files[rel].splitlines(keepends=True)
        out: list[str] = []
        pos = 0
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            m = _HUNK.match(lines[i])
            if not m:
                raise EditError(f"bad hunk header in patch: {lines[i].strip()!r}")
            start = int(m.group(1)) - (0 if m.group(2) == "0" else 1)
            out.extend(src[pos:start])
            pos = start
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\"):
                tag, body = lines[i][:1], lines[i][1:]
                if tag in (" ", "-"):
                    if pos >= len(src) or src[pos] != body:
                        raise EditError(f"patch context does not match {rel} at line {pos + 1}")
                    pos += 1
                    if tag == " ":
                        out.append(body)
                elif tag == "+":
                    out.append(body)
                i += 1
        out.extend(src[pos:])
        files[rel] = "".join(out)
    return Program.of(files)
