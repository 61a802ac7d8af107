"""Fixtures for the benchmark tests: the landscape directory and its modules on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
LANDSCAPE = BENCH / "landscape"

for p in (str(BENCH), str(LANDSCAPE)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture
def landscape_copy(tmp_path: Path) -> Path:
    """A copy of the landscape task directory (as an agent's workspace would be)."""
    import shutil

    dst = tmp_path / "landscape"
    shutil.copytree(LANDSCAPE, dst, ignore=shutil.ignore_patterns("__pycache__", ".landscape_*"))
    return dst
