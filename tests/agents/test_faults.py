"""Faults in real runs: each ends with the right status, the swarm goes on, nothing is lost."""

from __future__ import annotations

from agents.judge import DEFAULT_REPLICATES
from agents.swarm import Swarm, SwarmConfig
from memory.models import Role, Status, TraceQuery
from tests.agents.conftest import edit_proposal, fixed_factory, make_task

SLEEP = "time.sleep(min(budget, 0.2))"
PRINT = 'print("training...")'


def test_each_fault_gets_its_status_and_the_swarm_goes_on(tmp_path, store):
    task_dir = make_task(tmp_path / "quad", timeout=8)  # a loaded machine still starts a run in 8 s
    proposals = [
        edit_proposal("exception", SLEEP, 'raise RuntimeError("injected failure")'),
        edit_proposal("nan", PRINT, 'loss = float("nan")'),
        edit_proposal("hang", SLEEP, "time.sleep(300)"),
        edit_proposal("invalid edit", "THIS TEXT IS NOT IN THE FILE", "x = 1"),
        edit_proposal("tamper", PRINT, 'open("prepare.py", "a").write("# x\\n"); loss = -5.0'),
        edit_proposal("good", "LR = 0.1  # step size", "LR = 0.3  # step size"),
    ]
    factory = fixed_factory({"agent-0": proposals})
    config = SwarmConfig(
        task=str(task_dir), agents=1, devices="cpu", budget=1, runs_dir=str(tmp_path / "runs")
    )
    swarm = Swarm(config, store, proposer_factory=factory)
    result = swarm.run()
    assert result.errors == []
    assert "search exhausted" in result.stop_reasons["agent-0"]

    traces = store.query_traces(TraceQuery(task="quad", sort="created_at", limit=100)).data
    baselines = [t for t in traces if t.role == Role.baseline]
    assert len(baselines) == DEFAULT_REPLICATES and all(t.status == Status.keep for t in baselines)
    by_hyp = {t.hypothesis: t for t in traces if t.role == Role.experiment}
    assert set(by_hyp) == {"exception", "nan", "hang", "invalid edit", "tamper", "good"}

    assert by_hyp["exception"].status == Status.crash
    assert "RuntimeError: injected failure" in by_hyp["exception"].error
    assert by_hyp["nan"].status == Status.crash and "NaN" in by_hyp["nan"].error
    assert by_hyp["hang"].status == Status.timeout and "hard timeout" in by_hyp["hang"].error
    inv = by_hyp["invalid edit"]
    assert inv.status == Status.invalid and "does not occur" in inv.error
    assert inv.duration_s is None, "an invalid edit is refused before any run"
    # no program to fingerprint: the refused proposal is kept as the log, its digest names it
    assert inv.fingerprint.startswith("unapplied-") and "THIS TEXT IS NOT IN THE FILE" in (
        inv.log_tail or ""
    )
    tam = by_hyp["tamper"]
    assert tam.status == Status.invalid and "prepare.py" in tam.error and tam.metric < -4.9
    assert by_hyp["good"].status == Status.keep, "the swarm goes on after every fault"
    # nothing lost: every run kept its log, the workspace's protected file is restored
    for t in by_hyp.values():
        if t.duration_s is not None:
            assert t.log_tail or t.status == Status.timeout
    ws = tmp_path / "runs" / swarm.swarm_id / "agents" / "agent-0" / "work"
    assert (ws / "prepare.py").read_text() == "VALUE = 1\n"
    assert store.active_claims("quad") == []
    # the feedback of the refused edit reached the proposer's next request
    requests = factory.made["agent-0"].requests
    assert any("does not occur" in " ".join(r.feedback) for r in requests)
    # the champion is the good run, never the tampered one
    champ = store.champion("quad")
    assert champ is not None and champ.hypothesis == "good"


def one_agent(tmp_path, task_dir, **settings) -> SwarmConfig:
    """One agent on the CPU, 1 s runs."""
    return SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu",
        budget=1,
        runs_dir=str(tmp_path / "runs"),
        **settings,
    )


def table_rows(text: str, title: str) -> dict[str, list[str]]:
    """The rows of the Rich table printed after ``title`` in ``text``, by first cell."""
    cells = [
        [c.strip() for c in line.split("│")[1:-1]] for line in text.split(title, 1)[1].splitlines()
    ]
    return {row[0]: row[1:] for row in cells if row}


def test_live_table_summary_and_outputs_of_a_finished_swarm(tmp_path, store):
    import io

    from rich.console import Console

    from agents.view import agents_table, summary, swarm_traces, write_outputs

    task_dir = make_task(tmp_path / "quad")
    good = edit_proposal("LR up", "LR = 0.1  # step size", "LR = 0.3  # step size")
    bad = edit_proposal("MODE b", 'MODE = "a"', 'MODE = "b"')
    factory = fixed_factory({"agent-0": [good, bad]})
    swarm = Swarm(one_agent(tmp_path, task_dir), store, proposer_factory=factory)
    swarm.run()
    out = io.StringIO()
    console = Console(file=out, width=200)
    console.print(agents_table(swarm))
    traces = swarm_traces(swarm)
    console.print(summary(swarm, traces))
    text = out.getvalue()
    assert "agent-0" in text and "cpu[" in text and "champion val_loss" in text
    # 3 baseline replicates, LR up with its confirmation and its 2 re-measures: 7 kept runs
    assert "keep: 7" in text and "discard: 1" in text and "LR up" in text
    # the tables tell kept changes (LR up) from measurements (the start's replicates, LR
    # up's confirmation and re-measures: recorded keep when they ran)
    kept = text.split("kept changes", 1)[1].split("programs run more than once", 1)[0]
    assert "LR up" in kept and "replicate" not in kept and "re-measure" not in kept
    rows = table_rows(text, "programs run more than once")
    champion = store.champion("quad", swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id)
    assert champion is not None and champion.hypothesis == "LR up"
    start = traces[0]
    assert start.role == Role.baseline and start.parent_id is None
    for trace, runs, verdict in ((start, 3, "the start"), (champion, 4, "champion")):
        stats = store.program_stats(
            "quad", trace.fingerprint, swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id
        )
        assert stats.n == runs and stats.mean is not None
        assert rows[trace.id[:8]] == [str(runs), f"{stats.mean:.6g}", verdict, trace.hypothesis]
    assert len(rows) == 2  # MODE b ran once
    # LR up was confirmed and re-measured: it is the champion, so no leader apart from it
    assert "leading" not in text
    tsv, png = write_outputs(swarm, traces)
    rows = tsv.read_text().splitlines()
    assert len(rows) == 9 and rows[-1].split("\t")[3] == "discard"
    assert "MODE 'b'" in rows[-1] or "MODE b" in rows[-1]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_the_summary_keeps_a_losing_finalist_s_re_measures_out_of_the_kept_changes(tmp_path, store):
    """Re-tests at the end re-measure the best program even when it lost to the start:
    its re-measures are recorded ``keep`` (they ran), but the summary lists no kept change
    and shows the finalist, with the mean of its runs, as not the champion."""
    import io

    from rich.console import Console

    from agents.view import summary, swarm_traces

    task_dir = make_task(tmp_path / "quad")
    worse = edit_proposal("MODE b", 'MODE = "a"', 'MODE = "b"')  # +0.05: worse
    config = one_agent(tmp_path, task_dir, max_experiments=1, retest="end", finalists=1)
    swarm = Swarm(config, store, proposer_factory=fixed_factory({"agent-0": [worse]}))
    assert swarm.run().errors == []
    traces = swarm_traces(swarm)
    (mode_b,) = [t for t in traces if t.role == Role.experiment]
    finals = [t for t in traces if t.role == Role.remeasure]
    assert mode_b.status == Status.discard and len(finals) == 2
    assert all(t.status == Status.keep and t.parent_id == mode_b.id for t in finals)
    out = io.StringIO()
    Console(file=out, width=300).print(summary(swarm, traces))
    text = out.getvalue()
    assert "kept changes: none" in text and "keep: 5" in text  # 3 replicates, 2 finals
    rows = table_rows(text, "programs run more than once")
    stats = store.program_stats(
        "quad", mode_b.fingerprint, swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id
    )
    assert stats.n == 3 and stats.mean is not None
    assert rows[mode_b.id[:8]] == ["3", f"{stats.mean:.6g}", "not the champion", "MODE b"]
    assert rows[traces[0].id[:8]][2] == "champion"  # the start


def test_the_live_table_and_summary_show_a_leader_not_yet_re_tested(tmp_path, store):
    """A keep judged on its one run (no confirmation, no re-measure, no finals) is not the
    champion; the title and the summary show it apart, as the leader, marked so."""
    import io

    from rich.console import Console

    from agents.view import agents_table, summary, swarm_traces

    task_dir = make_task(tmp_path / "quad")
    good = edit_proposal("LR up", "LR = 0.1  # step size", "LR = 0.3  # step size")
    factory = fixed_factory({"agent-0": [good]})
    swarm = Swarm(
        one_agent(tmp_path, task_dir, confirm=False, remeasure=0), store, proposer_factory=factory
    )
    assert swarm.config.retest == "each" and swarm.config.finalists == 0
    swarm.run()
    lr_up = store.query_traces(TraceQuery(task="quad", role=[Role.experiment])).data
    assert [t.hypothesis for t in lr_up] == ["LR up"] and lr_up[0].status == Status.keep
    champion = store.champion("quad", swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id)
    assert champion is not None and champion.role == Role.baseline  # still the start
    out = io.StringIO()
    console = Console(file=out, width=400)
    console.print(agents_table(swarm))
    console.print(summary(swarm, swarm_traces(swarm)))
    text = out.getvalue()
    # its one big gain was re-run at once (a suspect metric), never re-measured
    stats = store.program_stats(
        "quad", lr_up[0].fingerprint, swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id
    )
    assert stats.n == 2 and stats.mean is not None
    # the champion by what it was chosen by: the mean of its runs (the start's 3 replicates)
    start = store.program_stats(
        "quad", champion.fingerprint, swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id
    )
    assert start.n == 3 and start.mean is not None and start.mean != champion.metric
    shown = f"val_loss {start.mean:.6g} (mean of 3 run(s))"
    assert f"champion {shown} | leading {stats.mean:.6g}" in text  # the live title
    assert f"champion {champion.id} {shown}: {champion.hypothesis}" in text  # the summary
    assert f"leading, unconfirmed: {lr_up[0].id} val_loss {stats.mean:.6g}" in text
    assert "(mean of 2 run(s)): the best mean so far, not the champion" in text


def test_an_agent_ended_by_refusals_says_how_many_and_the_last_reason(tmp_path, store):
    task_dir = make_task(tmp_path / "quad")
    good = edit_proposal("LR up", "LR = 0.1  # step size", "LR = 0.3  # step size")
    missing = [edit_proposal(f"edit {i}", f"NOT IN THE FILE {i}", "x = 1") for i in range(3)]
    factory = fixed_factory({"agent-0": [good, *missing]})
    swarm = Swarm(one_agent(tmp_path, task_dir, max_refusals=2), store, proposer_factory=factory)
    result = swarm.run()
    reason = result.stop_reasons["agent-0"]
    assert reason.startswith("2 proposals refused in a row (the last: invalid edit: ")
    assert "edit 1: the search text does not occur" in reason  # the second bad edit's
    assert len(factory.made["agent-0"].proposals) == 1, "the third bad edit was never asked for"


def test_an_agent_that_stops_after_a_refusal_is_not_said_to_be_refused_out(tmp_path, store):
    from agents.nodes import end_reason
    from tests.agents.conftest import agent_context

    ctx = agent_context(tmp_path, store, [], "s-stop", max_refusals=3)
    refused_once = {"refusals": 1, "reason": "invalid edit: x"}
    assert end_reason(ctx, refused_once) == "stopped"
    ctx.stop.set()  # Ctrl-C (or --hours) right after one refusal
    assert end_reason(ctx, refused_once) == "the swarm is stopping"
    refused_out = {"refusals": 3, "reason": "invalid edit: x"}
    said = end_reason(ctx, refused_out)
    assert said == "3 proposals refused in a row (the last: invalid edit: x)"
    assert end_reason(ctx, {**refused_out, "stop_reason": "out of time"}) == "out of time"
