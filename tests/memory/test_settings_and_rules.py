"""Where ``get_store(None)`` and the HTTP store take their settings from, and the one
direction rule (``better``) and running best that the dashboard and the exports share.

    .venv/bin/pytest tests/memory/test_settings_and_rules.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import ExperimentCreate, Status, get_store
from memory._http import HTTPStore
from memory.models import BestSoFar, Role, better, charted_keep, running_best
from memory.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LABSWARM_MEMORY", "LABSWARM_HOME", "LABSWARM_TOKEN", "LABSWARM_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABSWARM_EMBEDDER", "hash")


def test_memory_setting_wins_over_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSWARM_HOME", str(tmp_path / "home"))
    with get_store() as store:
        assert Path(store.location) == (tmp_path / "home").resolve()  # type: ignore[attr-defined]
    monkeypatch.setenv("LABSWARM_MEMORY", str(tmp_path / "mem"))
    with get_store() as store:
        assert Path(store.location) == (tmp_path / "mem").resolve()  # type: ignore[attr-defined]
        assert store.embedder.name == "hash-384"  # type: ignore[attr-defined]
    # explicit settings and an explicit target win over the environment
    with get_store(settings=Settings(memory=str(tmp_path / "given"))) as store:
        assert Path(store.location) == (tmp_path / "given").resolve()  # type: ignore[attr-defined]
    with get_store(tmp_path / "arg") as store:
        assert Path(store.location) == (tmp_path / "arg").resolve()  # type: ignore[attr-defined]


def test_postgres_without_chroma_names_the_setting() -> None:
    from memory import InvalidInput

    with pytest.raises(InvalidInput, match="LABSWARM_CHROMA_URL"):
        get_store("postgresql://postgres@127.0.0.1:5432/test", settings=Settings())


def test_http_store_token_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSWARM_TOKEN", "s3cret")
    with get_store("http://127.0.0.1:9") as store:
        assert isinstance(store, HTTPStore)
        assert store._client.headers["Authorization"] == "Bearer s3cret"
    with HTTPStore("http://127.0.0.1:9") as store:  # no token argument: none is sent
        assert "Authorization" not in store._client.headers


def test_better_follows_the_direction() -> None:
    assert better(0.9, 1.0, "minimize") and not better(1.0, 0.9, "minimize")
    assert better(1.0, 0.9, "maximize") and not better(0.9, 1.0, "maximize")
    assert not better(1.0, 1.0, "minimize") and not better(1.0, 1.0, "maximize")  # strict
    assert better(5.0, None, "minimize") and better(5.0, None, "maximize")


def _t(status: Status, metric: float | None) -> ExperimentCreate:
    return ExperimentCreate(task="t", fingerprint="f", status=status, metric=metric)


def test_running_best_counts_finite_keeps_only() -> None:
    runs = [
        _t(Status.discard, 0.5),  # a discard never sets the best
        _t(Status.keep, 1.0),
        _t(Status.crash, None),
        _t(Status.keep, 1.2),  # worse when minimising
        _t(Status.keep, 0.8),
        _t(Status.keep, None),
    ]
    assert running_best(runs, "minimize") == [
        BestSoFar(None, False),
        BestSoFar(1.0, True),
        BestSoFar(1.0, False),
        BestSoFar(1.0, False),
        BestSoFar(0.8, True),
        BestSoFar(0.8, False),
    ]
    assert [p.best for p in running_best(runs, "maximize")] == [None, 1.0, 1.0, 1.2, 1.2, 1.2]


def test_only_a_verdict_s_keep_or_a_start_s_replicate_sets_the_running_best() -> None:
    """A confirmation, a re-measure (a losing finalist's too) or a promoted short run is
    recorded keep when it ran; it measures a program already on the chart (or at another
    budget), so its luck never sets the best."""
    runs = [
        _t(Status.keep, 1.0).model_copy(update={"role": Role.baseline}),
        _t(Status.keep, 0.9).model_copy(update={"role": Role.experiment}),
        *(
            _t(Status.keep, 0.5).model_copy(update={"role": role})
            for role in (Role.confirmation, Role.remeasure, Role.short)
        ),
        _t(Status.keep, 0.8).model_copy(update={"role": Role.seed}),
        _t(Status.keep, 0.95).model_copy(update={"role": Role.baseline}),  # a later start
    ]
    assert [charted_keep(t) for t in runs] == [True, True, False, False, False, True, True]
    assert running_best(runs, "minimize") == [
        BestSoFar(1.0, True),
        BestSoFar(0.9, True),
        BestSoFar(0.9, False),
        BestSoFar(0.9, False),
        BestSoFar(0.9, False),
        BestSoFar(0.8, True),
        BestSoFar(0.8, False),
    ]
