"""The dashboard in a real browser (Debian's chromium driven by Playwright) against a real
uvicorn: it loads, the chart shows the seeded runs, search returns results, an experiment
page shows its diff, the page refreshes by itself while a swarm runs, the home page shows
the noise per hardware class and budget, and a trace shows what it was judged against.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory import get_store
from memory.models import AgentCreate, ExperimentCreate, Role, Status, SwarmCreate
from tests.server.conftest import AUTH
from tests.server.http_backend import TOKEN, serve_store
from tests.server.seeding import JUDGED_TASK, LINEAGE_TASK, judged_traces

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (apt install chromium)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: Any) -> None:
        # a 404 from /api/champion or /api/leader is an answer ("no trusted champion yet",
        # "nothing measured yet"), not an error
        url = (msg.location or {}).get("url", "")
        answer = ("/api/champion" in url or "/api/leader" in url) and "404" in msg.text
        if msg.type == "error" and not answer:
            errors.append(msg.text)

    page.on("console", on_console)
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


def chart_task(api: httpx.Client, pack_counts: dict[str, int]) -> str:
    """The pack's task when the pack is seeded (the chart worth looking at), else ours."""
    tasks = api.get("/api/tasks").json()["data"]
    others = [t for t in tasks if t != LINEAGE_TASK]
    return others[0] if pack_counts["traces"] and others else LINEAGE_TASK


def test_dashboard_chart_search_and_experiment_page(
    page: Any, server_url: str, api: httpx.Client, pack_counts: dict[str, int]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    task = chart_task(api, pack_counts)
    progress = api.get("/api/progress", params={"task": task}).json()
    with_metric = sum(1 for p in progress["data"] if p["metric"] is not None)
    assert with_metric > 0

    page.goto(f"{server_url}/?task={task}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    # the chart: a uPlot canvas fed with every run that has a metric
    page.wait_for_selector("#chart canvas")
    assert page.get_attribute("#chart", "data-points") == str(with_metric)
    assert f"{progress['count']} experiments" in page.inner_text("#chart-title")
    assert page.input_value("#task") == task
    # the experiment table: first page of this task's runs, newest first
    rows = page.locator("#exp-body tr.clickable")
    assert rows.count() == min(50, progress["count"])
    assert f"({progress['count']})" in page.inner_text("#exp-count")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # the table's status filter goes through the API
    page.select_option("#filters select[name=status]", "keep")
    page.click("#filters button[type=submit]")
    keeps = sum(1 for p in progress["data"] if p["status"] == "keep")
    page.wait_for_function(
        "n => document.querySelectorAll('#exp-body tr.clickable').length === n",
        arg=min(50, keeps),
    )
    assert all("keep" in t for t in page.locator("#exp-body tr td:nth-child(4)").all_inner_texts())

    # search (real MiniLM embeddings behind it)
    page.select_option("#task", LINEAGE_TASK)
    page.wait_for_function(f"() => document.querySelector('#task').value === '{LINEAGE_TASK}'")
    page.fill("#q", "a bigger network with more layers")
    page.click("#search-form button")
    page.wait_for_selector("#search-body tr.search-hit")
    first = page.locator("#search-body tr.search-hit").first
    assert "deeper" in first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)
    # one swarm on this task: its agents by their names alone
    page.wait_for_function(
        "() => [...document.querySelectorAll('#agents-body tr td:first-child')]"
        ".map((td) => td.textContent).sort().join() === 'a0,a1'"
    )

    # an experiment page with its diff, log and lineage
    first.click()
    page.wait_for_selector("#e-diff span.add")
    assert "+DEPTH = 8" in page.inner_text("#e-diff")
    assert "-DEPTH = 6" in page.inner_text("#e-diff")
    assert "val_bpb: 0.96" in page.inner_text("#e-log")
    assert page.locator("#e-lineage a").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "experiment.png"), full_page=True)
    assert page.errors == []


def test_dashboard_refreshes_while_a_swarm_runs(page: Any, tmp_path: Path) -> None:
    store = get_store(tmp_path / "memory", embedder="hash")
    store.upsert_swarm(SwarmCreate(id="live", task="live-task", status="running"))
    store.add_trace(
        ExperimentCreate(task="live-task", fingerprint="l0", status=Status.keep, metric=2.0)
    )
    try:
        with serve_store(store, token=TOKEN) as url:
            page.goto(f"{url}/?task=live-task")
            page.wait_for_selector("body[data-ready='1']")
            assert page.inner_text("#exp-count") == "(1)"
            assert page.get_attribute("#chart", "data-points") == "1"
            new = {"task": "live-task", "fingerprint": "l1", "status": "keep", "metric": 1.5}
            assert httpx.post(f"{url}/api/experiments", json=new, headers=AUTH).status_code == 201
            # no reload: the page polls while the swarm runs
            page.wait_for_function(
                "() => document.querySelector('#exp-count').textContent === '(2)'"
                " && document.querySelector('#chart').dataset.points === '2'"
                " && document.querySelector('#live').textContent === 'live'",
                timeout=20_000,
            )
            assert page.errors == []
    finally:
        store.close()


def test_ids_with_percent_open_and_ended_swarms_show_stopped_agents(
    page: Any, tmp_path: Path
) -> None:
    # security review 3.14: an id with "%" left the page blank ("URI malformed")
    store = get_store(tmp_path / "memory", embedder="hash")
    store.upsert_swarm(SwarmCreate(id="ended", task="pct-task", status="finished"))
    store.upsert_agent(
        AgentCreate(swarm_id="ended", name="agent-0", status="proposing", hypothesis="stale plan")
    )
    store.upsert_swarm(SwarmCreate(id="live", task="pct-task", status="running"))
    store.upsert_agent(
        AgentCreate(swarm_id="live", name="agent-0", status="running", hypothesis="wider MLP")
    )
    parent = "50%off"
    child = "child #2 %25 ?x=1"
    store.add_trace(
        ExperimentCreate(
            id=parent, task="pct-task", fingerprint="p0", status=Status.keep, metric=2.0
        )
    )
    store.add_trace(
        ExperimentCreate(
            id=child,
            task="pct-task",
            fingerprint="p1",
            status=Status.keep,
            metric=1.5,
            parent_id=parent,
        )
    )
    unusable = "unusable proposal: the answer holds no JSON object"
    store.add_trace(  # an LLM's answer with no usable hypothesis
        ExperimentCreate(id="refused", task="pct-task", fingerprint="unapplied-1",
                         status=Status.invalid, hypothesis="", error=unusable)
    )  # fmt: skip
    try:
        with serve_store(store, token=TOKEN) as url:
            page.goto(f"{url}/?task=pct-task")
            page.wait_for_selector("body[data-ready='1']")
            refused = page.inner_text("#exp-body tr[data-id='refused'] td.hyp")
            assert refused == f"(no hypothesis: {unusable})"
            assert page.inner_text(f"#exp-body tr[data-id='{child}'] td.hyp") == ""
            # agents: the ended swarm's agent is stopped (not "proposing"), the live one runs;
            # both are agent-0 (two machines' swarms on one memory): each row names its swarm
            rows = {
                r.split("\t")[0]: r.split("\t")
                for r in page.locator("#agents-body tr").all_inner_texts()
            }
            assert sorted(rows) == ["ended/agent-0", "live/agent-0"]
            assert (
                rows["ended/agent-0"][1] == "stopped" and "stale plan" not in rows["ended/agent-0"]
            )
            assert rows["live/agent-0"][1] == "running" and "wider MLP" in rows["live/agent-0"]
            # the table row of "50%off" opens its page
            page.click(f"#exp-body tr[data-id='{parent}']")
            page.wait_for_function(
                "id => document.querySelector('#e-title').textContent.includes(id)", arg=parent
            )
            assert page.evaluate("location.hash") == "#/e/50%25off"
            # its lineage link to the child (with "#", "%25", "?" in its id) opens too
            page.click("#e-lineage a:not(.current)")
            page.wait_for_function(
                "id => document.querySelector('#e-title').textContent.includes(id)", arg=child
            )
            # a hash typed by hand with a bare "%" still opens the page
            page.goto(f"{url}/#/e/50%off")
            page.wait_for_function(
                "id => document.querySelector('#e-title').textContent.includes(id)", arg=parent
            )
            assert page.errors == []
    finally:
        store.close()


def test_noise_per_hardware_and_budget_and_what_a_trace_was_judged_against(
    page: Any, tmp_path: Path
) -> None:
    store = get_store(tmp_path / "memory", embedder="hash")
    store.import_records(judged_traces(), [])
    # a trace of an older memory: nothing of its judging was recorded
    store.add_trace(
        ExperimentCreate(
            id="old", task=JUDGED_TASK, fingerprint="fp-old", status=Status.discard, metric=1.1
        )
    )
    try:
        with serve_store(store, token=TOKEN) as url:
            page.goto(f"{url}/?task={JUDGED_TASK}")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_selector("#noise-body tr.noise")
            rows = [r.split("\t") for r in page.locator("#noise-body tr").all_inner_texts()]
            # by hand: 1xH100/300 pools j-root's 3 replicates and j-lr's 4 runs (df 5);
            # 1xH100/600 and cpu/300 one program run four times each (df 3)
            h300 = math.sqrt((2 * 0.004**2 + 4 * 0.001**2) / 5)
            four = math.sqrt(4 * 0.001**2 / 3)
            assert rows == [
                ["1xH100", "300 s", f"{h300:.4g}", "7", "5", "2"],
                ["1xH100", "600 s", f"{four:.4g}", "4", "3", "1"],
                ["cpu", "300 s", f"{four:.4g}", "4", "3", "1"],
            ]
            assert "1 run(s) without a recorded hardware class" in page.inner_text("#noise-note")
            # the champion: the mean of j-warm's four kept runs, not j-lucky's single 0.9
            assert "0.941000 (n=4)" in page.inner_text("#stats")
            # j-lucky's single 0.9 leads: shown apart, marked as unconfirmed
            cards = page.locator("#stats .stat").all_inner_texts()
            assert "0.900000 (n=1)\nleader, unconfirmed (mean of its runs)" in cards, cards
            # kept changes: the verdicts' keeps, not the replicates and re-measures that ran
            st = store.stats(task=JUDGED_TASK)
            assert 0 < st.kept_changes < st.by_status["keep"]
            assert f"{st.kept_changes}\nkept changes" in cards, cards
            title = page.inner_text("#chart-title")
            assert f"experiments, {st.kept_changes} kept changes" in title, title
            page.screenshot(path=str(ARTIFACTS / "noise.png"), full_page=True)
            # the table names the role of a run no proposal made beside its stored status:
            # a re-measure stored "keep" is not read as one more kept change
            status = {
                tid: page.inner_text(f"#exp-body tr[data-id='{tid}'] td:nth-child(4)")
                for tid in ("j-lr", "j-lr+c", "r1-j-lr", "j-root2", "j-wd")
            }
            assert status == {
                "j-lr": "keep",
                "j-lr+c": "keep confirmation",
                "r1-j-lr": "keep re-measure",
                "j-root2": "keep baseline replicate",
                "j-wd": "discard",
            }, status

            page.click("#exp-body tr[data-id='j-lr']")
            page.wait_for_function(
                "() => document.querySelector('#e-title').textContent.includes('j-lr')"
            )
            judged = page.inner_text("#e-judged")
            for part in (
                "j-root",
                "1.000000 over 3 runs",
                "0.980000 over 2 runs",
                "0.004000 (3 runs)",
                "0.012300",
                "1003",
                "300 s",
                "1xH100",
            ):
                assert part in judged, (part, judged)
            assert page.inner_text("#e-reason") == "keep: judged against j-root over 2 run(s)"
            page.screenshot(path=str(ARTIFACTS / "judged.png"), full_page=True)
            page.goto(f"{url}/#/e/old")
            page.wait_for_function(
                "() => document.querySelector('#e-title').textContent.includes('old')"
            )
            assert "— (not recorded)" in page.inner_text("#e-judged")
            assert page.inner_text("#e-reason") == "(no reason recorded)"
            assert page.errors == []
    finally:
        store.close()


def test_insights_panel_shows_a_knob_move_linked_to_its_traces(page: Any, tmp_path: Path) -> None:
    store = get_store(tmp_path / "memory", embedder="hash")
    store.import_records(judged_traces(), [])

    def moved(name: str, metric: float, knobs: dict[str, list[Any]], hypothesis: str) -> None:
        """A discarded move judged against j-root (mean 1.000 over 3 runs)."""
        store.add_trace(
            ExperimentCreate(
                id=f"j-{name}",
                task=JUDGED_TASK,
                parent_id="j-root",
                fingerprint=f"fp-{name}",
                status=Status.discard,
                metric=metric,
                knobs=knobs,
                hypothesis=hypothesis,
                hardware="1xH100",
                budget_s=300.0,
                base_metric=1.0,
                base_n=3,
            )
        )

    # a knob move: gain 0.008
    moved("knob", 0.992, {"MATRIX_LR": [0.04, 0.05]}, "raise the matrix learning rate")
    # a whole-configuration move: neither knob's effect is its own, as the row says
    moved("whole", 1.02, {"DEPTH": [8, 12], "WARMUP_RATIO": [0.0, 0.1]}, "DEPTH and warmup up")
    try:
        with serve_store(store, token=TOKEN) as url:
            page.goto(f"{url}/?task={JUDGED_TASK}")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_selector("#insights-body tr.insight")
            text = page.inner_text("#insights-body")
            # by hand: the noise of 1xH100/300 pools j-root's 3 replicates and j-lr's 4 runs
            h300 = math.sqrt((2 * 0.004**2 + 4 * 0.001**2) / 5)
            row = next(r for r in text.splitlines() if "MATRIX_LR up" in r)
            assert f"+{(1.0 - 0.992) / h300:.2f} sd" in row, row
            assert "1xH100" in row and "1/1" in row, row
            assert "alone" not in row, row  # MATRIX_LR moved by itself
            for knob in ("DEPTH up", "WARMUP_RATIO up"):
                row = next(r for r in text.splitlines() if knob in r)
                assert f"{knob} · 0 of 1 alone" in row, row
            page.screenshot(path=str(ARTIFACTS / "insights.png"), full_page=True)
            page.click("#insights-body a[title='j-knob']")
            page.wait_for_function(
                "() => document.querySelector('#e-title').textContent.includes('j-knob')"
            )
            assert page.errors == []
    finally:
        store.close()


def test_chart_labels_stay_inside_the_plot_when_the_last_run_is_a_new_best(
    page: Any, tmp_path: Path
) -> None:
    """The best runs often end a chart: a label drawn to the right of the last point ran
    off the canvas (a finals-crowned champion's, on the built-in task's quick swarm)."""
    import json
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 3, 8, 12, tzinfo=UTC)
    values = [2.91, 2.93, 2.89, 2.82, 3.40, 3.10, 2.95, 2.41]
    store = get_store(tmp_path / "memory", embedder="hash")
    for i, value in enumerate(values):
        store.add_trace(
            ExperimentCreate(
                id=f"edge-{i}",
                task="edge",
                fingerprint="root" if i < 3 else f"fp-{i}",
                role=Role.baseline if i < 3 else Role.experiment,
                status=Status.keep if value < 2.9 or i < 3 else Status.discard,
                metric=value,
                hypothesis=f"idea {i}: a change described at the length of a real one",
                created_at=t0 + timedelta(minutes=i),
            )
        )
    try:
        with serve_store(store, token=TOKEN) as url:
            page.goto(f"{url}/?task=edge")
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_selector("#chart[data-label-boxes]")
            boxes = json.loads(page.get_attribute("#chart", "data-label-boxes"))
            width = page.evaluate("() => document.querySelector('#chart canvas').clientWidth")
            assert len(boxes) == 3, boxes  # the start, 2.82 and 2.41
            assert all(0 <= x0 < x1 <= width for x0, x1 in boxes), (boxes, width)
            assert page.errors == []
    finally:
        store.close()
