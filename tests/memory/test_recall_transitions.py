"""The before/after recall comparison and its estimate for the issue's hidden set."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.recall_transitions import NAMED, REPO, estimate_line, hidden_estimate, main


def test_a_search_that_keeps_every_hit_and_finds_no_miss_adds_only_the_named_fixes() -> None:
    # rates near 1 and 0: the 17 hits stay, the one unnamed miss stays missed
    transitions = Counter({(True, True): 100_000, (False, False): 100_000})
    mean, p_goal = hidden_estimate(transitions, named_fixed=2, draws=400, seed=1)
    assert mean == pytest.approx(19.0, abs=0.05)
    assert p_goal == pytest.approx(1.0, abs=0.01)
    mean, p_goal = hidden_estimate(transitions, named_fixed=1, draws=400, seed=1)
    assert mean == pytest.approx(18.0, abs=0.05)
    assert p_goal == pytest.approx(0.0, abs=0.01)


def test_a_search_that_loses_its_hits_cannot_reach_the_goal() -> None:
    transitions = Counter({(True, False): 100_000, (False, True): 100_000})
    mean, p_goal = hidden_estimate(transitions, named_fixed=2, draws=400, seed=1)
    assert mean == pytest.approx(3.0, abs=0.05)  # 0 of 17 kept, 2 named + 1 other found
    assert p_goal == 0.0


def test_the_estimate_falls_as_the_keep_rate_falls() -> None:
    high = hidden_estimate(Counter({(True, True): 99, (True, False): 1}), 2, 4000, 0)
    low = hidden_estimate(Counter({(True, True): 90, (True, False): 10}), 2, 4000, 0)
    assert high[0] > low[0] and high[1] > low[1]
    assert 0 < low[1] < high[1] < 1


def test_a_before_that_is_no_checkout_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--before", str(tmp_path)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--before", str(REPO), "--sets", "dev"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_a_checkout_against_itself_keeps_every_hit_and_finds_nothing_new(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--before", str(REPO), "--sets", "blind2", "--draws", "200"])
    out = capsys.readouterr().out
    row = re.search(r"^blind2\s+30\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    assert row is not None, out
    kept, lost, found, missed = map(int, row.groups())
    assert (lost, found) == (0, 0)
    assert kept + missed == 30 and kept > 0
    for query in NAMED:  # the shipped search finds the two examples (test_recall)
        assert f"{query!r}: before found, after found" in out
    # ... so the earlier search is not the issue's, and no estimate is made from it
    assert "hidden set estimate: none" in out and "P(>=" not in out


def test_the_estimate_is_made_only_from_a_search_that_misses_both_named_examples() -> None:
    total = Counter({(True, True): 99, (True, False): 1, (False, True): 9, (False, False): 1})
    line = estimate_line(total, [False, False], [True, True], draws=400, seed=1)
    assert line.startswith("hidden set estimate (17/20 before, 2 of the 2 named misses")
    assert "P(>= 19)" in line
    assert estimate_line(total, [False, False], [True, False], 400, 1).startswith(
        "hidden set estimate (17/20 before, 1 of the 2"
    )
    for named_before in ([True, False], [False, True], [True, True]):
        line = estimate_line(total, named_before, [True, True], draws=400, seed=1)
        assert line.startswith("hidden set estimate: none") and "P(>=" not in line
