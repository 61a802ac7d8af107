"""``GET /api/insights`` over the seeded server (a real uvicorn; tests/server/seeding.py):
the own swarm's knob moves with the numbers a hand computation gives, links that resolve
to experiments, a 404 for an unknown task and a 422 naming the field for bad input."""

from __future__ import annotations

import httpx
import pytest

from memory.insights import InsightReport
from tests.server.seeding import LINEAGE_TASK


def test_insights_of_the_own_swarm_match_a_hand_computation(api: httpx.Client) -> None:
    response = api.get(
        "/api/insights", params={"task": LINEAGE_TASK, "hardware": "1xH100", "budget": 300}
    )
    assert response.status_code == 200, response.text
    report = InsightReport.model_validate(response.json())
    assert (report.task, report.hardware, report.budget_s) == (LINEAGE_TASK, "1xH100", 300.0)
    knobs = {(k.knob, k.move): k for k in report.knobs}
    # on 1xH100 with 300 s: lr-up (0.98 on root's 1.00), wd (0.99 on lr-up's 0.98) and oom
    # (a crash whose base, depth, ran on cpu); no program ran twice, so no noise yet
    assert set(knobs) == {("MATRIX_LR", "up"), ("WEIGHT_DECAY", "up"), ("BATCH_SIZE", "up")}
    lr = knobs[("MATRIX_LR", "up")]
    assert (lr.n, lr.measured, lr.crashes, lr.trace_ids) == (1, 1, 0, ["lr-up"])
    assert lr.mean_gain == pytest.approx(1.000 - 0.980)
    assert lr.effect is None and lr.noise_sd is None
    wd = knobs[("WEIGHT_DECAY", "up")]
    assert wd.mean_gain == pytest.approx(0.980 - 0.990)
    oom = knobs[("BATCH_SIZE", "up")]
    assert (oom.n, oom.measured, oom.crashes, oom.crash_rate) == (1, 0, 1, 1.0)
    assert [i.trace_ids for i in report.ideas] == [["swiglu"]]
    for insight in [*report.knobs, *report.ideas]:
        for tid in insight.trace_ids:  # every link resolves
            assert api.get(f"/api/experiments/{tid}").json()["id"] == tid
    # without filters: every hardware class and budget of the task (depth ran on cpu)
    everything = InsightReport.model_validate(
        api.get("/api/insights", params={"task": LINEAGE_TASK}).json()
    )
    assert {(k.hardware, k.knob) for k in everything.knobs} >= {
        ("1xH100", "MATRIX_LR"),
        ("cpu", "DEPTH"),
    }


def test_insights_refuse_an_unknown_task_and_bad_input(api: httpx.Client) -> None:
    missing = api.get("/api/insights", params={"task": "no-such-task"})
    assert missing.status_code == 404
    assert "no-such-task" in missing.json()["message"]
    for params, field in (
        ({}, "query.task"),
        ({"task": "a\x00b"}, "query.task"),
        ({"task": LINEAGE_TASK, "budget": "-1"}, "query.budget"),
        ({"task": LINEAGE_TASK, "budget": "inf"}, "query.budget"),
        ({"task": LINEAGE_TASK, "hardware": "h\x00"}, "query.hardware"),
        ({"task": LINEAGE_TASK, "hardware": "x" * 101}, "query.hardware"),
    ):
        response = api.get("/api/insights", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["message"], (params, response.json())
