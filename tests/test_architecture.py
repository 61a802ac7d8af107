"""The package boundaries of DESIGN.md, checked from the source, and the lazy heavy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"agents", "memory", "server", "trainer"}

# package -> packages of ours it may import
ALLOWED = {
    "trainer": set(),
    "memory": {"memory"},
    "server": {"server", "memory"},
    "agents": {"agents", "memory", "server"},  # server: only from the CLI (test below)
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependency_arrows_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    crossings = {str(f.relative_to(ROOT)): sorted(_imports(f) - ALLOWED[package]) for f in files}
    assert {k: v for k, v in crossings.items() if v} == {}


def test_agents_import_server_only_from_the_cli() -> None:
    # agents/ may import server only from the CLI, the one place that wires everything;
    # trainer is never imported (agents run it only as a subprocess)
    offenders = [
        str(f.relative_to(ROOT))
        for f in (ROOT / "agents").rglob("*.py")
        if "server" in _imports(f) and f.parent.name != "cli"
    ]
    assert offenders == []


def test_agents_has_no_import_cycle() -> None:
    """No module of agents/ imports itself back through others (lazy and TYPE_CHECKING
    imports count: a cycle they hide is still a cycle)."""
    files = {
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
        for f in (ROOT / "agents").rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, f in files.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):  # lazy ones too
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in files}
            elif isinstance(node, ast.ImportFrom) and node.module in files:
                subs = {f"{node.module}.{a.name}" for a in node.names}
                graph[name] |= (subs & files.keys()) or {node.module}

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            mod = todo.pop()
            if mod not in seen:
                seen.add(mod)
                todo += graph.get(mod, ())
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert cycles == []


def test_agents_is_this_repository_not_the_pypi_package() -> None:
    import agents

    assert Path(agents.__file__).resolve().is_relative_to(ROOT)


def test_cli_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from agents.cli import build_parser; build_parser().format_help();"
        "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'transformers')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
