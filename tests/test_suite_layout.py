"""How `make test` spreads the suite over pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_WORKER

ROOT = Path(__file__).resolve().parents[1]


def test_files_named_to_share_a_worker_exist() -> None:
    # a renamed Ray test file would silently leave the group and run beside the other one
    for name in SHARED_WORKER:
        assert list((ROOT / "tests").rglob(name)), f"tests/**/{name} is gone"


def test_make_test_distributes_by_group() -> None:
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ntest:", 1)[1]
    assert "--dist loadgroup" in recipe.split("\n\n", 1)[0]


def test_every_collected_test_has_one_group_and_the_ray_files_share_one(
    request: pytest.FixtureRequest,
) -> None:
    groups: dict[Path, set[str]] = {}
    for item in request.session.items:
        marks = list(item.iter_markers("xdist_group"))
        assert len(marks) == 1, f"{item.nodeid}: {len(marks)} xdist_group marks"
        groups.setdefault(item.path, set()).add(marks[0].args[0])
    for path, names in groups.items():
        assert len(names) == 1, f"{path} is split over groups {names}"
    assert groups[Path(__file__)] == {str(Path(__file__))}
    ray = {names.pop() for path, names in groups.items() if path.name in SHARED_WORKER}
    assert ray in (set(), {"ray"}), ray
