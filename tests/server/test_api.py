"""Read endpoints through a real uvicorn over the seeded store: filters, sort, pagination,
one experiment, lineage, champion, search, claims, agents, stats, 404 and 422; the champion
and the noise of a judged swarm (its own small store)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory import get_store
from memory.models import ExperimentCreate, Role, Status, SwarmCreate
from tests.server.http_backend import TOKEN, serve_store
from tests.server.seeding import (
    JUDGED_RUNS,
    JUDGED_SWARM,
    JUDGED_TASK,
    LINEAGE_TASK,
    RUNS,
    SWARM_ID,
    judged_traces,
)


def everything(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every experiment matching ``params``, paged through 1000 at a time."""
    rows: list[dict[str, Any]] = []
    while True:
        page = api.get("/api/experiments", params={**params, "limit": 1000, "offset": len(rows)})
        assert page.status_code == 200, page.text
        body = page.json()
        rows.extend(body["data"])
        if not body["data"] or len(rows) >= body["count"]:
            return rows


def test_health_says_writes_need_the_token(api: httpx.Client) -> None:
    body = api.get("/api/health").json()
    assert body["status"] == "ok" and body["writes"] == "token"
    assert body["store"] == "SqlStore"


def test_list_counts_every_seeded_trace(api: httpx.Client, pack_counts: dict[str, int]) -> None:
    page = api.get("/api/experiments", params={"limit": 5}).json()
    assert set(page) == {"data", "count"}
    assert page["count"] >= pack_counts["traces"] + len(RUNS)
    assert len(page["data"]) == 5
    # newest first by default
    times = [row["created_at"] for row in page["data"]]
    assert times == sorted(times, reverse=True)


def test_pagination_covers_each_row_once(api: httpx.Client) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        body = api.get(
            "/api/experiments",
            params={"task": LINEAGE_TASK, "sort": "created_at", "limit": 3, "offset": offset},
        ).json()
        assert body["count"] == len(RUNS)
        if not body["data"]:
            break
        assert len(body["data"]) <= 3
        seen.extend(row["id"] for row in body["data"])
        offset += 3
    assert seen == [run[0] for run in RUNS]  # oldest first, each exactly once
    past = api.get("/api/experiments", params={"task": LINEAGE_TASK, "offset": 100}).json()
    assert past == {"data": [], "count": len(RUNS)}


def test_pack_task_pages_agree_with_the_pack(api: httpx.Client, seeded: Any) -> None:
    pack_rows = [r for r in everything(api) if r["task"] != LINEAGE_TASK]
    by_task: dict[str, int] = {}
    for row in pack_rows:
        by_task[row["task"]] = by_task.get(row["task"], 0) + 1
    for task, n in by_task.items():
        assert api.get("/api/experiments", params={"task": task}).json()["count"] == n


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status": "keep"}, lambda r: r["status"] == "keep"),
        ({"status": ["crash", "timeout"]}, lambda r: r["status"] in ("crash", "timeout")),
        ({"agent_id": f"{SWARM_ID}/a1"}, lambda r: r["agent_id"] == f"{SWARM_ID}/a1"),
        ({"swarm_id": SWARM_ID}, lambda r: r["swarm_id"] == SWARM_ID),
        ({"hardware": "cpu"}, lambda r: r["hardware"] == "cpu"),
        (
            {"metric_min": 0.95, "metric_max": 0.97},
            lambda r: r["metric"] is not None and 0.95 <= r["metric"] <= 0.97,
        ),
        ({"since": "2026-03-08T12:20:00Z"}, lambda r: r["created_at"] >= "2026-03-08T12:20:00"),
        ({"until": "2026-03-08T12:20:00Z"}, lambda r: r["created_at"] < "2026-03-08T12:20:00"),
    ],
)
def test_filters_match_a_python_filter_of_everything(
    api: httpx.Client, params: dict[str, Any], keep: Any
) -> None:
    expected = sorted(r["id"] for r in everything(api) if keep(r))
    got = everything(api, **params)
    assert sorted(r["id"] for r in got) == expected
    assert expected, f"seeded data has no row for {params}"


def test_sorts(api: httpx.Client) -> None:
    best = everything(api, task=LINEAGE_TASK, sort="best")
    metrics = [r["metric"] for r in best]
    with_metric = [m for m in metrics if m is not None]
    assert with_metric == sorted(with_metric)
    assert metrics[len(with_metric) :] == [None] * (len(metrics) - len(with_metric))
    worst_first = [r["metric"] for r in everything(api, task=LINEAGE_TASK, sort="-metric")]
    ordered = [m for m in worst_first if m is not None]
    assert ordered == sorted(ordered, reverse=True)


def test_one_experiment_has_diff_knobs_and_log(api: httpx.Client) -> None:
    body = api.get("/api/experiments/depth").json()
    assert body["id"] == "depth" and body["status"] == "keep"
    assert "+DEPTH = 8" in body["diff"] and "-DEPTH = 6" in body["diff"]
    assert body["knobs"] == {"DEPTH": [6, 8]}
    assert "val_bpb: 0.96" in body["log_tail"]
    crash = api.get("/api/experiments/oom").json()
    assert crash["metric"] is None and "out of memory" in crash["error"]


def test_lineage_orders_ancestors_root_first(api: httpx.Client) -> None:
    body = api.get("/api/experiments/warm/lineage").json()
    assert body["experiment"]["id"] == "warm"
    assert "WARMUP" in body["experiment"]["diff"]
    assert [a["id"] for a in body["ancestors"]] == ["root", "lr-up", "depth"]
    assert sorted(d["id"] for d in body["descendants"]) == ["slow", "swiglu"]
    root = api.get("/api/experiments/root/lineage").json()
    assert root["ancestors"] == []
    assert sorted(d["id"] for d in root["descendants"]) == sorted(r[0] for r in RUNS[1:])


def test_single_keeps_are_no_champion(api: httpx.Client) -> None:
    # every program of the seeded swarm was kept once: none is proven (>= 2 keeps)
    response = api.get("/api/champion", params={"task": LINEAGE_TASK})
    assert response.status_code == 404, response.text
    assert "has 2 trusted kept runs" in response.json()["message"]


def test_pack_traces_never_become_the_champion(api: httpx.Client) -> None:
    # the pack's keeps are evidence (role seed, a source): no champion until re-run here
    for task in {r["task"] for r in everything(api)} - {LINEAGE_TASK}:
        keeps = everything(api, task=task, status="keep")
        assert keeps and all(k["role"] == "seed" or k["source"] for k in keeps)
        response = api.get("/api/champion", params={"task": task})
        assert response.status_code == 404, response.text
        assert everything(api, task=task, trusted="true") == []


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server over a store holding only the judged swarm (``seeding.JUDGED_RUNS``)."""
    with get_store(tmp_path_factory.mktemp("judged") / "memory", embedder="hash") as store:
        store.import_records(judged_traces(), [])
        with serve_store(store, token=TOKEN) as url, httpx.Client(base_url=url) as client:
            yield client


def test_progress_draws_a_verdict_s_keeps_and_the_start_s_replicates_as_kept(
    judged: httpx.Client,
) -> None:
    body = judged.get("/api/progress", params={"task": JUDGED_TASK}).json()
    assert [p["id"] for p in body["data"]] == [run[0] for run in JUDGED_RUNS]
    kept = [p["id"] for p in body["data"] if p["kept"]]
    assert body["kept_changes"] == 4  # the title's count: the verdicts' keeps alone
    assert kept == ["j-root", "j-root2", "j-root3", "j-lr", "j-lucky", "j-depth", "j-warm"]
    # confirmations and re-measures are recorded keep, and drawn as other runs
    measured = [p for p in body["data"] if p["id"].startswith("r") or p["id"].endswith("+c")]
    assert len(measured) == 9 and all(p["status"] == "keep" and not p["kept"] for p in measured)
    # the start's third replicate sets a new best (0.996 < 1.000) but is the start's
    # program: the chart labels that program once
    bests = [p["id"] for p in body["data"] if p["is_best"]]
    assert bests == ["j-root", "j-root3", "j-lr", "j-lucky"]
    assert [p["id"] for p in body["data"] if p["labelled"]] == ["j-root", "j-lr", "j-lucky"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # j-warm's mean 0.941 beats j-depth's 0.961 by more than the noise's margin
        # (j-lucky's 0.900 ran once)
        ({}, "j-warm"),
        ({"budget": 300}, "j-depth"),  # "j-warm" ran with 600 s
        ({"budget": 600}, "j-warm"),
        ({"hardware": "1xH100", "budget": 300}, "j-lr"),  # "j-depth" ran on cpu
        ({"hardware": "cpu"}, "j-depth"),
        ({"swarm_id": JUDGED_SWARM}, "j-warm"),
        ({"swarm_id": "another"}, None),
        ({"budget": 60}, None),
        ({"hardware": "tpu"}, None),
    ],
)
def test_champion_is_kept_twice_and_beat_the_one_before_on_hardware_and_budget(
    judged: httpx.Client, params: dict[str, Any], expected: str | None
) -> None:
    response = judged.get("/api/champion", params={"task": JUDGED_TASK, **params})
    if expected is None:
        assert response.status_code == 404 and response.json()["error"] == "not_found"
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == expected and body["role"] == "experiment"  # not its confirmation


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # j-lucky's one run (0.900) is the best mean: it leads, it is not the champion
        ({}, "j-lucky"),
        ({"budget": 300}, "j-lucky"),
        ({"hardware": "1xH100", "budget": 600}, "j-warm"),
        ({"hardware": "cpu"}, "j-depth"),
        ({"swarm_id": "another"}, None),
        ({"hardware": "tpu"}, None),
    ],
)
def test_leader_is_the_best_mean_however_few_its_runs(
    judged: httpx.Client, params: dict[str, Any], expected: str | None
) -> None:
    response = judged.get("/api/leader", params={"task": JUDGED_TASK, **params})
    if expected is None:
        assert response.status_code == 404, response.text
        assert "has a measured run yet" in response.json()["message"]
        return
    assert response.status_code == 200, response.text
    assert response.json()["id"] == expected


def test_leader_of_a_bad_budget_is_422_naming_it(judged: httpx.Client) -> None:
    response = judged.get("/api/leader", params={"task": JUDGED_TASK, "budget": "soon"})
    assert response.status_code == 422 and "budget" in response.json()["message"]


def test_noise_is_pooled_over_repeated_programs(judged: httpx.Client) -> None:
    params: dict[str, str | int] = {"task": JUDGED_TASK, "hardware": "1xH100", "budget": 300}
    body = judged.get("/api/noise", params=params).json()
    # by hand: j-root (1.0, 1.004, 0.996) and j-lr's four runs (0.980, 0.982 twice: its
    # experiment, confirmation and two re-measures); j-lucky, j-wd ran once
    assert (body["n"], body["df"], body["groups"], body["identical"]) == (7, 5, 2, False)
    assert body["sd"] == pytest.approx(math.sqrt((2 * 0.004**2 + 4 * 0.001**2) / 5))
    everywhere = judged.get("/api/noise", params={"task": JUDGED_TASK}).json()
    assert (everywhere["n"], everywhere["df"], everywhere["groups"]) == (15, 11, 4)
    none = judged.get("/api/noise", params={"task": JUDGED_TASK, "hardware": "tpu"}).json()
    assert none == {"sd": None, "n": 0, "df": 0, "groups": 0, "identical": False}


def test_program_stats_give_the_mean_behind_a_champion(judged: httpx.Client) -> None:
    params = {"task": JUDGED_TASK, "fingerprint": "fp-warm", "hardware": "1xH100"}
    body = judged.get("/api/program-stats", params=params).json()
    assert body["n"] == 4 and body["mean"] == pytest.approx(0.941)
    assert body["sd"] == pytest.approx(math.sqrt(4 * 0.001**2 / 3))
    root = judged.get("/api/program-stats", params={**params, "fingerprint": "fp-root"}).json()
    assert root["n"] == 3 and root["mean"] == pytest.approx(1.0)
    missing = judged.get("/api/program-stats", params={"task": JUDGED_TASK})
    assert missing.status_code == 422 and "fingerprint" in missing.json()["message"]
    none = judged.get("/api/program-stats", params={**params, "fingerprint": "nope"}).json()
    assert none == {"mean": None, "n": 0, "sd": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "task"),
        ({"task": ""}, "task"),
        ({"task": "t", "budget": -1}, "budget"),
        ({"task": "t", "budget": "inf"}, "budget"),
        ({"task": "t", "hardware": "x" * 201}, "hardware"),
        ({"task": "t", "swarm_id": "s\x00"}, "swarm_id"),
    ],
)
def test_bad_noise_queries_are_422_naming_the_field(
    judged: httpx.Client, params: dict[str, Any], field: str
) -> None:
    response = judged.get("/api/noise", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input" and field in response.json()["message"]


def test_judged_fields_and_confirmations_through_the_api(judged: httpx.Client) -> None:
    confirmations = everything(judged, task=JUDGED_TASK, role="confirmation")
    assert sorted(r["id"] for r in confirmations) == ["j-depth+c", "j-lr+c", "j-warm+c"]
    assert all(r["parent_id"] == r["id"].removesuffix("+c") for r in confirmations)
    one = judged.get("/api/experiments/j-lr").json()
    assert {k: one[k] for k in ("base_metric", "base_n", "judged_n", "noise_sd", "threshold")} == {
        "base_metric": 1.0,
        "base_n": 3,
        "judged_n": 2,
        "noise_sd": 0.004,
        "threshold": 0.0123,
    }
    assert one["seed"] == 1003 and one["reason"].startswith("keep: judged against j-root")


def test_experiments_filter_by_budget_and_trust(api: httpx.Client) -> None:
    ids = [r["id"] for r in everything(api, task=LINEAGE_TASK, budget_s=600)]
    assert ids == ["warm"]
    trusted = everything(api, task=LINEAGE_TASK, trusted="true")
    assert len(trusted) == len(RUNS)


def test_champion_of_unknown_task_is_404_with_a_message(api: httpx.Client) -> None:
    response = api.get("/api/champion", params={"task": "no-such-task"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "no-such-task" in response.json()["message"]


def test_progress_has_every_run_and_a_running_best(api: httpx.Client) -> None:
    body = api.get("/api/progress", params={"task": LINEAGE_TASK}).json()
    assert [p["id"] for p in body["data"]] == [r[0] for r in RUNS]
    assert [p["best"] for p in body["data"]] == [1.0, 0.98, 0.98, 0.96, 0.96, 0.955, 0.955, 0.955]
    assert [p["id"] for p in body["data"] if p["is_best"]] == ["root", "lr-up", "depth", "warm"]
    assert body["direction"] == "minimize" and body["metric_name"] == "val_bpb"


def test_search_finds_by_meaning_with_scores(api: httpx.Client) -> None:
    body = api.get(
        "/api/search",
        params={"q": "a bigger network with more layers", "task": LINEAGE_TASK, "limit": 3},
    ).json()
    assert body["count"] == len(body["data"]) == 3
    assert body["data"][0]["kind"] == "trace" and body["data"][0]["id"] == "depth"
    scores = [hit["score"] for hit in body["data"]]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert body["data"][0]["experiment"]["id"] == "depth"


def test_search_filters_kind_and_status(api: httpx.Client) -> None:
    findings = api.get(
        "/api/search",
        params={"q": "rotary position embedding", "kinds": "finding", "task": LINEAGE_TASK},
    ).json()
    assert [h["id"] for h in findings["data"]] == ["finding-rope"]
    crashes = api.get(
        "/api/search",
        params={"q": "memory", "kinds": "trace", "status": "crash", "task": LINEAGE_TASK},
    ).json()
    assert [h["id"] for h in crashes["data"]] == ["oom"]


def test_search_over_the_pack(api: httpx.Client, pack_counts: dict[str, int]) -> None:
    if not pack_counts["traces"]:
        pytest.skip("the Karpathy pack is not in seeds/ yet")
    hits = api.get("/api/search", params={"q": "learning rate", "limit": 5}).json()["data"]
    assert len(hits) == 5
    assert any("lr" in h["text"].lower() or "learning rate" in h["text"].lower() for h in hits)


def test_claims_agents_swarms_findings_stats(api: httpx.Client) -> None:
    claims = api.get("/api/claims", params={"task": LINEAGE_TASK}).json()
    assert claims["count"] == 1 and claims["data"][0]["fingerprint"] == "fp-inflight"
    agents = api.get("/api/agents", params={"swarm_id": SWARM_ID}).json()
    assert [a["name"] for a in agents["data"]] == ["a0", "a1"] and agents["count"] == 2
    swarms = api.get("/api/swarms", params={"task": LINEAGE_TASK}).json()
    assert [s["id"] for s in swarms["data"]] == [SWARM_ID]
    findings = api.get("/api/findings", params={"task": LINEAGE_TASK}).json()
    assert findings["count"] == 1 and findings["data"][0]["id"] == "finding-rope"
    stats = api.get("/api/stats", params={"task": LINEAGE_TASK}).json()
    assert stats["total"] == len(RUNS)
    assert stats["by_status"] == {"keep": 4, "discard": 2, "crash": 1, "timeout": 1}
    assert stats["keep_rate"] == pytest.approx(4 / 6)
    assert stats["tasks"] == {LINEAGE_TASK: len(RUNS)} and stats["kept_changes"] == 4
    assert stats["active_claims"] == 1
    assert LINEAGE_TASK in api.get("/api/tasks").json()["data"]


def test_tasks_lists_every_task_most_recently_active_first_then_swarms_without_runs(
    tmp_path: Path,
) -> None:
    """A task whose last trace is older than the newest 1,000 is still listed (the
    dashboard's task picker reads this list), and a swarm that has not run yet too."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old = [ExperimentCreate(id="o", task="old", fingerprint="o", status=Status.keep, created_at=t0)]
    new = [
        ExperimentCreate(
            id=f"n{i}",
            task="new",
            fingerprint=f"n{i}",
            status=Status.discard,
            created_at=t0 + timedelta(seconds=1 + i),
        )
        for i in range(1000)
    ]
    with get_store(tmp_path / "memory", embedder="hash") as store:
        store.import_records(old + new, [])
        store.upsert_swarm(SwarmCreate(id="s", task="waiting"))
        with serve_store(store, token=TOKEN) as url, httpx.Client(base_url=url) as client:
            tasks = client.get("/api/tasks").json()
            stats = client.get("/api/stats").json()
    assert tasks == {"data": ["new", "old", "waiting"], "count": 3}
    assert stats["tasks"] == {"new": 1000, "old": 1}


@pytest.mark.parametrize(
    "path",
    [
        "/api/experiments/no-such-id",
        "/api/experiments/no-such-id/lineage",
    ],
)
def test_unknown_id_is_404_naming_it(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found" and "no-such-id" in body["message"]


def test_unknown_route_is_404_json(api: httpx.Client) -> None:
    response = api.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "exploded"}, "status"),
        ({"role": "boss"}, "role"),
        ({"sort": "alphabetical"}, "sort"),
        ({"since": "yesterday"}, "since"),
        ({"metric_min": "nan"}, "metric_min"),
        ({"metric_min": 2, "metric_max": 1}, "metric_min"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    api: httpx.Client, params: dict[str, Any], field: str
) -> None:
    response = api.get("/api/experiments", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert field in body["message"]


def test_search_needs_a_query(api: httpx.Client) -> None:
    for params in (
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x", "limit": 1001},
        {"q": "x", "kinds": "bogus"},
    ):
        response = api.get("/api/search", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"] == "invalid_input"
    assert "q" in api.get("/api/search").json()["message"]


def test_cli_against_a_server_prints_no_library_chatter(server_url: str) -> None:
    """A command against a labswarm server printed one httpx INFO line per request, so a
    swarm or a search through a server buried its own lines; libraries now speak from
    WARNING up, and ``--verbose`` still shows everything."""
    repo = Path(__file__).resolve().parents[2]

    def stats(*flags: str) -> subprocess.CompletedProcess[str]:
        cli = "import sys; from agents.cli import main; sys.exit(main())"
        argv = [sys.executable, "-c", cli, *flags, "memory", "stats"]
        return subprocess.run(
            [*argv, "--memory", server_url], capture_output=True, text=True, cwd=repo, timeout=120
        )

    quiet = stats()
    assert quiet.returncode == 0, quiet.stderr
    assert "traces" in quiet.stdout
    assert "HTTP Request" not in quiet.stderr, quiet.stderr
    loud = stats("--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "httpx: HTTP Request: GET " + server_url + "/api/stats" in loud.stderr


def test_progress_draws_a_champion_the_finals_chose_as_kept(tmp_path: Path) -> None:
    """The finals crowned a program its search-time verdict discarded: its last re-measure
    is drawn kept and sets the running best, as memory names it the champion."""
    t0 = datetime(2026, 3, 8, 12, tzinfo=UTC)
    runs = [  # (id, role, fingerprint, status, metric)
        ("c-root1", "baseline", "fp-root", "keep", 2.91),
        ("c-root2", "baseline", "fp-root", "keep", 2.93),
        ("c-root3", "baseline", "fp-root", "keep", 2.89),
        ("c-depth", "experiment", "fp-depth", "keep", 2.82),
        ("c-seq", "experiment", "fp-seq", "discard", 2.39),
        ("r1-c-seq", "remeasure", "fp-seq", "keep", 2.42),
        ("r2-c-seq", "remeasure", "fp-seq", "keep", 2.41),
    ]
    traces = [
        ExperimentCreate(
            id=tid,
            task="crowned",
            swarm_id="sw-crowned",
            parent_id=None if role == "baseline" else "c-root1",
            role=Role(role),
            hypothesis=f"run {tid}",
            fingerprint=fp,
            status=Status(status),
            metric=metric,
            hardware="cpu",
            budget_s=20.0,
            created_at=t0 + timedelta(minutes=i),
        )
        for i, (tid, role, fp, status, metric) in enumerate(runs)
    ]
    with get_store(tmp_path / "memory", embedder="hash") as store:
        store.import_records(traces, [])
        champion = store.champion("crowned")
        assert champion is not None and champion.id == "c-seq"
        with serve_store(store, token=TOKEN) as url, httpx.Client(base_url=url) as client:
            body = client.get("/api/progress", params={"task": "crowned"}).json()
    points = {p["id"]: p for p in body["data"]}
    assert [tid for tid, p in points.items() if p["kept"]] == [
        "c-root1", "c-root2", "c-root3", "c-depth", "r2-c-seq"
    ]  # fmt: skip
    assert points["r2-c-seq"]["is_best"] and points["r2-c-seq"]["labelled"]
    assert points["r2-c-seq"]["best"] == 2.41
    # its label names the idea (its first run's hypothesis), not "re-measure 2 of ..."
    labels = {tid: p["label"] for tid, p in points.items() if p["labelled"]}
    assert labels == {
        "c-root1": "run c-root1",
        "c-depth": "run c-depth",
        "r2-c-seq": "champion (finals): run c-seq",
    }
    assert body["kept_changes"] == 1  # no search-time verdict kept it
