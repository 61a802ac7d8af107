"""Knobs: module-level constants of the editable files that the builtin proposer tunes.

Discovery (by AST, never by running the file): a module-level ``NAME = value`` (or
``NAME: type = value``) whose value is a number, a string or a bool, optionally negated.
Without a task ``knobs`` list, names must be UPPER_CASE and names containing ``SEED`` are
left out (tuning a seed only fits noise); with a list, exactly the listed names count,
in any case (for nanoGPT-style configs such as ``learning_rate = 6e-4``).

A string knob is tunable only when its line says its choices in a trailing comment:
``ACTIVATION = "relu"  # choices: relu | gelu | silu``. A rewrite changes only the value
on that constant's line; every other line and byte of the file stays as it was.
"""

from __future__ import annotations

import ast
import json
import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from agents.program import Program

KnobKind = Literal["float", "int", "bool", "str"]
KnobValue = float | int | bool | str

_UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CHOICES = re.compile(r"#.*?(?:choices|one of)\s*:?\s*(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Knob:
    """One tunable constant: where it is and what it holds."""

    name: str
    path: str  # editable file
    line: int  # 1-based
    col: int  # 0-based start of the value on that line, in UTF-8 bytes (as the AST counts)
    end_col: int  # 0-based end (exclusive) of the value, in UTF-8 bytes
    value: KnobValue
    kind: KnobKind
    choices: tuple[str, ...] = ()  # for str knobs: the allowed values (value included)


def _literal(node: ast.expr) -> KnobValue | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    return None


def kind_of(value: KnobValue) -> KnobKind:
    """The kind of a knob's value (a bool is a bool, not an int)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _choices(line_text: str, value: str) -> tuple[str, ...]:
    m = _CHOICES.search(line_text)
    if not m:
        return ()
    parts = [p.strip().strip("'\"") for p in re.split(r"[|,]", m.group(1))]
    found = tuple(dict.fromkeys(p for p in parts if p))
    return found if value in found and len(found) > 1 else ()


# CPython 3.11 builds ast objects with per-interpreter state that two threads parsing at
# once can corrupt ("SystemError: AST constructor recursion depth mismatch", python/cpython
# gh-106905); agents are threads of one process, so their parses take turns.
_AST_LOCK = threading.Lock()


def parse_python(text: str) -> ast.Module:
    """``ast.parse(text)``, one thread at a time (see ``_AST_LOCK``)."""
    with _AST_LOCK:
        return ast.parse(text)


def discover_knobs(program: Program, names: Iterable[str] = ()) -> list[Knob]:
    """Knobs of every ``.py`` file of ``program``, in file and line order."""
    wanted = set(names)
    knobs: list[Knob] = []
    for path, text in program.files:
        if not path.endswith(".py"):
            continue
        try:
            tree = parse_python(text)
        except SyntaxError:
            continue
        lines = text.splitlines()
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value_node = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value_node = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            name = target.id
            if wanted:
                if name not in wanted:
                    continue
            elif not _UPPER.match(name) or "SEED" in name:
                continue
            value = _literal(value_node)
            if value is None or value_node.lineno != value_node.end_lineno:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            kind = kind_of(value)
            line_text = lines[value_node.lineno - 1]
            choices = _choices(line_text, value) if isinstance(value, str) else ()
            knobs.append(
                Knob(
                    name=name,
                    path=path,
                    line=value_node.lineno,
                    col=value_node.col_offset,
                    end_col=value_node.end_col_offset or value_node.col_offset,
                    value=value,
                    kind=kind,
                    choices=choices,
                )
            )
    return knobs


def knob_values(program: Program, names: Iterable[str] = ()) -> dict[str, KnobValue]:
    """``{name: value}`` of the program's knobs."""
    return {k.name: k.value for k in discover_knobs(program, names)}


def format_value(value: KnobValue, like: str = "") -> str:
    """Python source for ``value``; strings keep the quote style of ``like``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".e") or "inf" in text else text + ".0"
    if like.startswith("'"):
        return repr(value)
    return json.dumps(value)


def rewrite_knob(program: Program, knob: Knob, value: KnobValue) -> Program:
    """``program`` with only the value on ``knob``'s line replaced by ``value``."""
    text = program.get(knob.path)
    lines = text.splitlines(keepends=True)
    old_line = lines[knob.line - 1].encode("utf-8")  # AST columns count UTF-8 bytes
    old_src = old_line[knob.col : knob.end_col].decode("utf-8")
    new_src = format_value(value, old_src).encode("utf-8")
    lines[knob.line - 1] = (old_line[: knob.col] + new_src + old_line[knob.end_col :]).decode()
    return program.replace_file(knob.path, "".join(lines))


def set_knobs(program: Program, values: dict[str, Any], names: Iterable[str] = ()) -> Program:
    """Rewrite several knobs, one line each. The files are parsed once: the rewrites run
    from the last knob of a file to its first, so none moves a knob still to be rewritten
    (a knob's value sits on one line, and a rewrite moves only what follows it on that
    line). A whole-configuration proposal sets every knob; re-reading the file after each
    rewrite cost one parse per knob (about 90 ms for the built-in task's 21)."""
    current = {k.name: k for k in discover_knobs(program, names)}
    for name in values:
        if name not in current:
            raise KeyError(f"no knob named {name!r}")
    changed = [
        current[name]
        for name, value in values.items()
        if current[name].value != value or type(current[name].value) is not type(value)
    ]
    for knob in sorted(changed, key=lambda k: (k.path, k.line, k.col), reverse=True):
        program = rewrite_knob(program, knob, values[knob.name])
    return program


def knob_changes(
    old: Program, new: Program, names: Iterable[str] = ()
) -> dict[str, list[KnobValue | None]]:
    """``{name: [old, new]}`` for knobs whose value differs between two programs."""
    names = tuple(names)
    a, b = knob_values(old, names), knob_values(new, names)
    changes: dict[str, list[KnobValue | None]] = {}
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name) or type(a.get(name)) is not type(b.get(name)):
            changes[name] = [a.get(name), b.get(name)]
    return changes
