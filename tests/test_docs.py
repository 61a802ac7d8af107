"""The docs name every process setting once, and only memory/settings.py reads them from
the environment (issue: one settings class, "the docs list each variable once")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from memory.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# trainer/ is a task's program: it reads run variables (docs/tasks.md), never settings.
PACKAGES = ("agents", "memory", "server")
SETTING_NAMES = {f"LABSWARM_{name.upper()}" for name in Settings.model_fields}


def _table_rows(text: str) -> list[str]:
    """First cells of the markdown table rows of ``text`` (backticks stripped)."""
    cells = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            cells.append(line.split("|")[1].strip().strip("`"))
    return cells


def test_every_setting_has_exactly_one_row_in_the_docs() -> None:
    rows: dict[str, list[str]] = {}
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for cell in _table_rows(doc.read_text(encoding="utf-8")):
            if re.fullmatch(r"LABSWARM_[A-Z_]+", cell):
                rows.setdefault(cell, []).append(doc.name)
    for name in sorted(SETTING_NAMES):
        assert rows.get(name) == ["settings.md"], f"{name}: table rows in {rows.get(name)}"
    unknown = {n for n, docs in rows.items() if "settings.md" in docs} - SETTING_NAMES
    assert not unknown, f"docs/settings.md lists variables Settings does not have: {unknown}"


def _environ_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``LABSWARM_*`` string constants used as keys of ``os.environ``/``os.getenv``."""
    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            environ_get = f.attr == "get" and ast.unparse(f.value) in ("os.environ", "environ")
            if (environ_get or ast.unparse(f) == "os.getenv") and node.args:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.append((node.lineno, key.value))
    return found


def test_only_the_settings_module_reads_process_settings_from_the_environment() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "memory/settings.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, key in _environ_reads(tree):
                if key in SETTING_NAMES:
                    offenders.append(f"{rel}:{line} reads {key}")
    assert not offenders, "\n".join(offenders)


def test_the_environment_check_can_see_a_read() -> None:
    code = 'import os\nx = os.environ.get("LABSWARM_MEMORY")\ny = os.environ["LABSWARM_TOKEN"]'
    assert [k for _, k in _environ_reads(ast.parse(code))] == ["LABSWARM_MEMORY", "LABSWARM_TOKEN"]
