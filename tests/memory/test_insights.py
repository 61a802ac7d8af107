"""Insights (issue 15) against every backend of the contract suite (embedded, team, and the
HTTP store through the server): a memory built with known effects gives the numbers a hand
computation gives; every insight's trace ids resolve; a failure on an outgrown base makes
its insight stale; new traces update the report; free-form edits are grouped by meaning
(the real MiniLM); an exported pack carries the insights as findings that come back intact
when imported; ``labswarm insights`` prints them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agents.cli import main
from memory import ExperimentCreate, Role, Status, Store, get_store
from memory.insights import (
    IDEA_SIMILARITY,
    InsightReport,
    KnobInsight,
    outgrown,
    recorded_base,
    stale_failures,
)
from memory.models import RunStats
from memory.packs import export_pack, import_pack, load_pack
from tests.memory import test_contract
from tests.memory.test_contract import at

store = test_contract.store  # every backend, emptied per test

TASK = "insights"
WHERE: dict[str, Any] = {"task": TASK, "hardware": "cpu", "budget_s": 60.0, "swarm_id": "s1"}


def add(store: Store, tid: str, minutes: float, **kw: Any) -> None:
    data: dict[str, Any] = {**WHERE, "fingerprint": f"fp-{tid}", "created_at": at(minutes)}
    data.update(kw)
    store.add_trace(ExperimentCreate(id=tid, **data))


def build(store: Store) -> None:
    """A root run 3 times (1.00, 1.02, 0.98), then moves of LR and WD with known metrics."""
    for i, metric in enumerate((1.00, 1.02, 0.98)):
        add(store, f"b{i}", i, role=Role.baseline, fingerprint="fp-root", status=Status.keep,
            metric=metric, hypothesis=f"baseline replicate {i + 1}")  # fmt: skip
    # LR up alone, no recorded base (the parent program's stats are used), run twice
    add(store, "e1", 10, parent_id="b0", status=Status.discard, metric=0.97,
        knobs={"LR": [0.04, 0.05]}, hypothesis="raise the learning rate")  # fmt: skip
    add(store, "e1c", 11, parent_id="e1", role=Role.confirmation, fingerprint="fp-e1",
        status=Status.discard, metric=0.95)  # fmt: skip
    # LR up with WD down, judged against a recorded base of 1.005 over 2 runs
    add(store, "e2", 12, parent_id="b0", status=Status.discard, metric=1.01,
        knobs={"LR": [0.04, 0.08], "WD": [0.1, 0.0]}, base_metric=1.005, base_n=2,
        hypothesis="raise the learning rate more, no weight decay")  # fmt: skip
    # LR far up crashes; LR down is worse
    add(store, "e3", 13, parent_id="b0", status=Status.crash, knobs={"LR": [0.04, 0.2]},
        hypothesis="a much larger learning rate", error="loss is NaN")  # fmt: skip
    add(store, "e4", 14, parent_id="b0", status=Status.discard, metric=1.03,
        knobs={"LR": [0.04, 0.03]}, hypothesis="lower the learning rate")  # fmt: skip
    # evidence from elsewhere never counts: a seed and an imported trace moving LR up
    add(store, "s1", 15, parent_id="b0", role=Role.seed, status=Status.keep, metric=0.5,
        knobs={"LR": [0.04, 0.06]}, source="pack:other")  # fmt: skip
    add(store, "i1", 16, parent_id="b0", status=Status.keep, metric=0.5,
        knobs={"LR": [0.04, 0.06]}, source="http://elsewhere")  # fmt: skip


def knob(report: InsightReport, name: str, move: str) -> KnobInsight:
    found = [k for k in report.knobs if k.knob == name and k.move == move]
    assert len(found) == 1, [(k.knob, k.move) for k in report.knobs]
    return found[0]


def test_knob_effects_match_a_hand_computation_and_link_their_traces(store: Store) -> None:
    build(store)
    report = store.insights(TASK, "cpu", 60.0)
    assert report.traces == 8  # the seed and the imported trace are not read
    # by hand: the noise pools the root's 3 runs (ss 0.0008) and e1's 2 (mean 0.96,
    # ss 0.0002) over df = 5 - 2
    sd = math.sqrt((0.02**2 + 0.02**2 + 0.01**2 + 0.01**2) / 3)
    # e1: its program's mean 0.96 against the root's mean 1.00; e2: 1.01 against 1.005
    g1, g2 = 1.00 - 0.96, 1.005 - 1.01
    up = knob(report, "LR", "up")
    assert (up.n, up.measured, up.crashes, up.alone) == (3, 2, 1, 2)
    assert up.crash_rate == pytest.approx(1 / 3)
    assert up.noise_sd == pytest.approx(sd)
    assert up.mean_gain == pytest.approx((g1 + g2) / 2)
    assert up.effect == pytest.approx((g1 + g2) / 2 / sd)
    assert up.effect_sd == pytest.approx(abs(g1 - g2) / sd / math.sqrt(2))
    assert up.base_mean == pytest.approx((1.00 + 1.005 + 1.00) / 3)
    assert up.trace_ids == ["e1", "e2", "e3"]
    assert [(r.id, r.value) for r in up.runs] == [("e1", 0.05), ("e2", 0.08), ("e3", 0.2)]
    assert [r.effect for r in up.runs[:2]] == pytest.approx([g1 / sd, g2 / sd])
    # crash rate by region of the new value: only the largest step crashed
    assert [(r.lo, r.hi, r.n, r.crashes) for r in up.regions] == [
        (0.05, 0.05, 1, 0),
        (0.08, 0.08, 1, 0),
        (0.2, 0.2, 1, 1),
    ]
    assert up.strength == pytest.approx(max(abs((g1 + g2) / 2 / sd) * math.sqrt(2), 1))
    down = knob(report, "LR", "down")
    assert (down.n, down.trace_ids) == (1, ["e4"])
    assert down.effect == pytest.approx((1.00 - 1.03) / sd)
    assert down.effect_sd is None
    wd = knob(report, "WD", "down")
    assert (wd.n, wd.alone, wd.trace_ids) == (1, 0, ["e2"])
    assert wd.mean_gain == pytest.approx(g2)
    assert not any(k.stale for k in report.knobs)
    # every link resolves to a real trace that made the move
    for k in report.knobs:
        for tid in k.trace_ids:
            t = store.get_trace(tid)
            assert t.task == TASK and k.knob in t.knobs and t.role == Role.experiment
    # the prompt: short lines, strongest evidence first, naming the numbers
    lines = report.prompt_lines(2)
    assert len(lines) == 2
    assert lines[0].startswith("LR down: worse by") and "1 measured" in lines[0]
    assert lines[1].startswith("LR up: better by") and "1/3 crashed (1/1 at 0.2)" in lines[1]
    assert "e1,e2,e3" in lines[1]
    assert report.prompt_lines(0) == []
    # another hardware class or budget has nothing
    assert store.insights(TASK, "cpu", 120.0).knobs == []
    assert store.insights(TASK, "1xH100").knobs == []
    assert store.insights("no such task").knobs == []


def test_insight_on_an_outgrown_base_is_stale_and_new_traces_update_it(store: Store) -> None:
    build(store)
    first = store.insights(TASK, "cpu", 60.0)
    assert not any(k.knob == "DEPTH" for k in first.knobs)
    # a crash judged against a base of 1.2 (3 runs): the champion (the root, 1.00 over 3
    # runs) beats it by far more than the margin, so it failed on an older base
    add(store, "e5", 20, parent_id="b0", status=Status.crash, knobs={"DEPTH": [8, 16]},
        base_metric=1.2, base_n=3, hypothesis="twice the depth")  # fmt: skip
    report = store.insights(TASK, "cpu", 60.0)
    depth = knob(report, "DEPTH", "up")
    assert depth.stale and depth.runs[0].stale and depth.crash_rate == 1.0
    assert not knob(report, "LR", "up").stale
    # the same rule, applied to recall's traces (agents.nodes.stale_failures)
    e5 = store.get_trace("e5")
    champion = RunStats(mean=1.0, n=3, sd=None)
    noise = store.noise(TASK, "cpu", 60.0)
    assert stale_failures(
        [e5, store.get_trace("e4")],
        champion,
        lambda t: recorded_base(t) or RunStats(mean=1.0, n=3, sd=None),
        "minimize",
        noise.sd,
        noise.df,
    ) == ["e5"]
    assert not outgrown(champion, champion, "minimize", noise.sd, noise.df)
    # stale insights come last in the prompt, and say so
    lines = report.prompt_lines(10)
    assert lines[-1].startswith("DEPTH up") and "stale" in lines[-1]
    # a further LR-up run is counted at the next call
    add(store, "e6", 21, parent_id="b0", status=Status.discard, metric=0.99,
        knobs={"LR": [0.04, 0.05]}, hypothesis="raise the learning rate again")  # fmt: skip
    up = knob(store.insights(TASK, "cpu", 60.0), "LR", "up")
    assert (up.n, up.trace_ids[-1]) == (4, "e6")


def test_the_champion_s_own_change_is_not_stale_when_the_champion_moves(store: Store) -> None:
    """A kept change becomes the champion: the runs measured on the root go stale, the
    champion's own change and its ancestor's do not (the champion is built on them)."""
    build(store)
    add(store, "k1", 40, parent_id="b0", status=Status.keep, metric=0.90,
        knobs={"DEPTH": [8, 9]}, hypothesis="one more layer")  # fmt: skip
    for i in (1, 2):  # re-measures: the runs no verdict chose, which crown a champion
        add(store, f"k1r{i}", 40 + i / 10, parent_id="k1", role=Role.remeasure,
            fingerprint="fp-k1", status=Status.keep, metric=0.90)  # fmt: skip
    add(store, "k2", 42, parent_id="k1", status=Status.keep, metric=0.70, base_metric=0.90,
        base_n=2, knobs={"WIDTH": [512, 640]}, hypothesis="wider")  # fmt: skip
    for i in (1, 2):
        add(store, f"k2r{i}", 42 + i / 10, parent_id="k2", role=Role.remeasure,
            fingerprint="fp-k2", status=Status.keep, metric=0.70)  # fmt: skip
    champion = store.champion(TASK, "cpu", 60.0)
    assert champion is not None and champion.fingerprint == "fp-k2"
    report = store.insights(TASK, "cpu", 60.0)
    # measured on the root (1.00), which the champion (0.70) beats by far: stale
    assert knob(report, "LR", "down").stale and knob(report, "LR", "up").stale
    # the champion's own change, and the change it is built on, are in it
    assert not knob(report, "WIDTH", "up").stale
    assert not knob(report, "DEPTH", "up").stale
    assert [line.split(":")[0] for line in report.prompt_lines(2)] == ["WIDTH up", "DEPTH up"]


def test_free_form_edits_are_grouped_by_meaning(store: Store) -> None:
    build(store)
    ideas = [
        ("f1", "tie the input and output embeddings", Status.discard, 1.01),
        ("f2", "share the token embedding matrix with the output head (weight tying)",
         Status.discard, 1.03),
        ("f3", "replace ReLU squared with GELU in the MLP", Status.discard, 0.99),
        ("f4", "swap the MLP activation for SwiGLU", Status.crash, None),
        ("f5", "use the same weights for the embedding and the lm head", Status.discard, 1.02),
    ]  # fmt: skip
    for i, (tid, text, status, metric) in enumerate(ideas):
        add(store, tid, 30 + i, parent_id="b0", status=status, metric=metric, hypothesis=text)
    report = store.insights(TASK, "cpu", 60.0)
    groups = {tuple(i.trace_ids) for i in report.ideas}
    assert groups == {("f1", "f2", "f5"), ("f3", "f4")}, IDEA_SIMILARITY
    tying = next(i for i in report.ideas if i.trace_ids[0] == "f1")
    assert tying.idea == ideas[0][1]
    assert (tying.n, tying.keeps, tying.discards, tying.crashes) == (3, 0, 3, 0)
    assert tying.mean_gain == pytest.approx(1.00 - (1.01 + 1.03 + 1.02) / 3)
    act = next(i for i in report.ideas if i.trace_ids[0] == "f3")
    assert (act.n, act.measured, act.crashes, act.crash_rate) == (2, 1, 1, 0.5)
    assert any(line.startswith('idea "tie the input') for line in report.prompt_lines(20))


def test_pack_export_carries_insights_that_import_back_intact(
    tmp_path: Path, hash_embedder: Any
) -> None:
    pack = tmp_path / "insights.jsonl"
    with get_store(tmp_path / "a", embedder=hash_embedder) as a:
        build(a)
        original = a.insights(TASK)
        assert original.knobs
        export_pack(a, pack, name="insights-pack")
    loaded = load_pack(pack)
    carried = [f for f in loaded.findings if "insight" in f.evidence]
    assert len(carried) == len(original.knobs) + len(original.ideas)
    lr = next(f for f in carried if f.evidence["insight"].get("knob") == "LR"
              and f.evidence["insight"]["move"] == "up")  # fmt: skip
    assert lr.outcome == "keep" and lr.change.startswith("LR up: better by")
    assert lr.evidence["insight"]["trace_ids"] == ["e1", "e2", "e3"]
    with get_store(tmp_path / "b", embedder=hash_embedder) as b:
        first = import_pack(b, pack)
        assert first.added_findings == len(carried)
        assert import_pack(b, pack).added_findings == 0  # idempotent
        report = b.insights(TASK)
        # imported traces are evidence, never this installation's own numbers
        assert report.knobs == [] and report.ideas == []
        back = {imp.finding_id: imp for imp in report.imported}
        assert {f.id for f in carried} == set(back)
        by_id = {f.id: f for f in carried}
        for fid, imp in back.items():
            assert imp.pack == "insights-pack"
            # intact: the same typed insight that was exported
            assert imp.insight.model_dump(mode="json") == by_id[fid].evidence["insight"]
            assert imp.insight in [*original.knobs, *original.ideas]
            for tid in imp.insight.trace_ids:  # its links resolve in the importing memory
                assert b.get_trace(tid).id == tid
        lines = report.prompt_lines(50)
        assert any(line.startswith("(imported from insights-pack) LR up:") for line in lines)
        # exporting again carries them unchanged (same ids, same evidence)
        again = tmp_path / "again.jsonl"
        export_pack(b, again, name="again")
        assert {f.id: f.evidence for f in load_pack(again).findings if f.evidence} == {
            f.id: f.evidence for f in carried
        }


def test_packs_exported_one_after_the_other_import_as_one_version_of_each_insight(
    tmp_path: Path, hash_embedder: Any
) -> None:
    with get_store(tmp_path / "a", embedder=hash_embedder) as a:
        build(a)
        export_pack(a, tmp_path / "p1.jsonl", name="p1")
        first = {(i.kind, getattr(i, "knob", ""), getattr(i, "move", "")): i.n
                 for i in a.insights(TASK).ranked()}  # fmt: skip
        add(a, "e9", 30, parent_id="b0", status=Status.discard, metric=1.04,
            knobs={"LR": [0.04, 0.03]}, hypothesis="lower the learning rate again")  # fmt: skip
        export_pack(a, tmp_path / "p2.jsonl", name="p2")
        later = a.insights(TASK).ranked()
    with get_store(tmp_path / "b", embedder=hash_embedder) as b:
        import_pack(b, tmp_path / "p1.jsonl")
        second = import_pack(b, tmp_path / "p2.jsonl")  # unchanged insights: already stored
        assert second.added_findings == 1  # only the grown "LR down"
        imported = b.insights(TASK).imported
    assert len(imported) == len(later)
    by_move = {(i.insight.knob, i.insight.move): i for i in imported
               if isinstance(i.insight, KnobInsight)}  # fmt: skip
    lr_down = by_move[("LR", "down")]
    assert lr_down.insight.n == first[("knob", "LR", "down")] + 1
    assert "e9" in lr_down.insight.trace_ids
    assert lr_down.pack == "p2"


def test_cli_insights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABSWARM_EMBEDDER", "hash")
    monkeypatch.delenv("LABSWARM_MEMORY", raising=False)
    mem = str(tmp_path / "mem")
    with get_store(mem) as s:
        build(s)
    assert main(["insights", "--task", TASK, "--memory", mem]) == 0
    out = capsys.readouterr().out
    # the seed and the imported trace of build() are held but not read
    assert "insights of task 'insights': 8 trusted traces read of the 10 held; imported " in out
    assert "[cpu 60 s] LR up: better by" in out
    assert "    traces: e1 e2 e3" in out
    # each insight's ids are printed once, in full, on the line below it
    assert "[traces " not in out and out.count("e1 e2 e3") == 1
    assert main(["insights", "--task", TASK, "--budget", "60", "--json", "--memory", mem]) == 0
    report = InsightReport.model_validate(json.loads(capsys.readouterr().out))
    assert knob(report, "LR", "up").trace_ids == ["e1", "e2", "e3"]
    assert main(["insights", "--task", "nothing", "--memory", mem]) == 0
    out = capsys.readouterr().out
    assert "insights of task 'nothing': 0 trusted traces read\n" in out
    assert f"no trace of task 'nothing' in this memory; it holds '{TASK}' (" in out
    # without --task: the memory's only task; with several, an error that names them
    assert main(["insights", "--memory", mem]) == 0
    assert f"insights of task '{TASK}': 8 trusted traces read" in capsys.readouterr().out
    assert main(["insights", "--budget", "999", "--memory", mem]) == 0
    out = capsys.readouterr().out
    assert "nothing yet: no judged experiment of this task on budget 999 to learn from" in out
    with get_store(mem) as s:
        s.add_trace(test_contract.trace(id="o1", task="other"))
    assert main(["insights", "--memory", mem]) == 1
    err = capsys.readouterr().err
    # most recently active first
    assert (
        "--task: this memory holds several tasks, name one: 'other' (1 trace), 'insights' (" in err
    )
    empty = str(tmp_path / "empty")
    assert main(["insights", "--memory", empty]) == 1
    assert "--task: this memory holds no traces yet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["insights", "--task", TASK, "--budget", "-1", "--memory", mem])
    assert "--budget: must be positive" in capsys.readouterr().err


def test_insights_without_a_task_from_a_server_that_does_not_list_its_tasks() -> None:
    from agents.cli.memory_cmds import _the_task
    from memory import InvalidInput
    from memory.models import Stats

    older = Stats.model_validate(  # /api/stats of a server older than Stats.tasks
        {"total": 3, "by_status": {"keep": 3}, "keep_rate": None, "duplicates_refused": 0,
         "experiments_per_hour": None, "findings": 0, "active_claims": 0}
    )  # fmt: skip
    assert older.tasks == {}
    with pytest.raises(InvalidInput, match=r"required \(this server does not list its tasks\)"):
        _the_task(None, older)
    assert _the_task("named", older) == "named"
