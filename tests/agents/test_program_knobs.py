"""Programs (fingerprint, edits, diffs) and knobs (AST discovery, one-line rewrites)."""

from __future__ import annotations

import pytest

from agents.knobs import discover_knobs, knob_changes, rewrite_knob, set_knobs
from agents.program import Edit, EditError, Program, apply_diff, apply_edits, diff
from agents.task import load_task

SRC = '''"""doc"""
import os

LR = 0.04  # learning rate
DEPTH = 8
NEG = -3
USE_X = True
ACT = "relu"  # choices: relu | gelu | silu
NAME = "fixed"
BETAS = (0.9, 0.95)
SEED = 42
lower = 1.5
T0 = os.getpid()


def f():
    INNER = 3
    return INNER
'''


def prog(text: str = SRC) -> Program:
    return Program.of({"train.py": text})


def test_fingerprint_ignores_invisible_whitespace_only():
    a = prog()
    assert prog(SRC.replace("\n", "\r\n")).fingerprint == a.fingerprint
    assert prog(SRC.replace("DEPTH = 8", "DEPTH = 8   ")).fingerprint == a.fingerprint
    assert prog(SRC + "\n\n").fingerprint == a.fingerprint
    assert prog(SRC.replace("DEPTH = 8", "DEPTH = 9")).fingerprint != a.fingerprint


def test_discovery_finds_module_level_upper_case_scalars():
    knobs = {k.name: k for k in discover_knobs(prog())}
    assert set(knobs) == {"LR", "DEPTH", "NEG", "USE_X", "ACT", "NAME"}
    assert knobs["LR"].kind == "float" and knobs["LR"].value == 0.04 and knobs["LR"].line == 4
    assert knobs["NEG"].value == -3 and knobs["USE_X"].kind == "bool"
    assert knobs["ACT"].choices == ("relu", "gelu", "silu")
    assert knobs["NAME"].choices == ()  # no choices listed: not tunable by the builtin


def test_task_listed_names_pick_lower_case_settings():
    knobs = discover_knobs(prog(), ["lower", "LR"])
    assert [k.name for k in knobs] == ["LR", "lower"]


def test_rewrite_changes_only_that_constants_line():
    p = prog()
    knob = next(k for k in discover_knobs(p) if k.name == "LR")
    new = rewrite_knob(p, knob, 0.0123)
    old_lines, new_lines = SRC.splitlines(), new.get("train.py").splitlines()
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert changed == [3]
    assert new_lines[3] == "LR = 0.0123  # learning rate"
    s = set_knobs(p, {"ACT": "gelu", "USE_X": False, "DEPTH": 16})
    assert 'ACT = "gelu"  # choices: relu | gelu | silu' in s.get("train.py")
    assert knob_changes(p, s) == {"ACT": ["relu", "gelu"], "DEPTH": [8, 16], "USE_X": [True, False]}


def test_several_knobs_are_set_as_if_one_at_a_time():
    """One parse for all rewrites (last knob first) writes what rewriting one knob at a time,
    re-reading the positions each time, writes -- also for two knobs on one line whose
    values change length, and across files."""
    text = SRC.replace("DEPTH = 8\n", "DEPTH = 8; WIDTH = 64  # two on one line\n")
    p = Program.of({"train.py": text, "model.py": "HEADS = 4\nDROP = 0.1\n"})
    values = {"WIDTH": 1024, "DEPTH": 12, "LR": 0.000125, "ACT": "silu", "HEADS": 16, "DROP": 0.0}
    one_at_a_time = p
    for name, value in values.items():
        one_at_a_time = set_knobs(one_at_a_time, {name: value})
    together = set_knobs(p, values)
    assert together.files == one_at_a_time.files
    assert "DEPTH = 12; WIDTH = 1024  # two on one line" in together.get("train.py")
    assert knob_changes(p, together) == {
        "ACT": ["relu", "silu"],
        "DEPTH": [8, 12],
        "DROP": [0.1, 0.0],
        "HEADS": [4, 16],
        "LR": [0.04, 0.000125],
        "WIDTH": [64, 1024],
    }
    assert set_knobs(p, {"LR": 0.04}).files == p.files  # the same value: nothing rewritten
    with pytest.raises(KeyError, match="NOPE"):
        set_knobs(p, {"LR": 0.1, "NOPE": 1})


def test_builtin_trainer_knobs_are_discovered():
    task = load_task(None)
    root = Program.read(task.root, task.editable)
    names = {k.name for k in discover_knobs(root, task.knobs)}
    assert {"MATRIX_LR", "DEPTH_CPU", "WARMDOWN_RATIO"} <= names
    assert "SEED" not in names and "ADAM_BETAS" not in names


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (Edit(path="prepare.py", search="x", replace="y"), "is not an editable file"),
        (Edit(path="train.py", search="LR = 0.5", replace="x"), "does not occur"),
        (Edit(path="train.py", search="INNER", replace="X"), "occurs 2 times"),
        (Edit(path="train.py", search="DEPTH = 8", replace="DEPTH = = 8"), "does not compile"),
        (Edit(path="train.py", search="DEPTH = 8", replace="DEPTH = 8"), "change nothing"),
    ],
)
def test_invalid_edits_are_refused_with_a_reason(edit, reason):
    with pytest.raises(EditError) as err:
        apply_edits(prog(), [edit])
    assert reason in err.value.reason


def test_edit_diff_and_replay_round_trip():
    base = prog()
    new = apply_edits(base, [Edit(path="train.py", search="DEPTH = 8", replace="DEPTH = 12")])
    patch = diff(base, new)
    assert "-DEPTH = 8" in patch and "+DEPTH = 12" in patch
    assert apply_diff(base, patch).fingerprint == new.fingerprint
    other = prog(SRC.replace("import os", "import sys"))
    with pytest.raises(EditError):  # context differs: refused, not applied blindly
        apply_diff(other, diff(prog(SRC.replace("import os", "import re")), other))
