"""Packs: the shipped Karpathy pack, bad files (nothing imported, message says file:line),
idempotent import, and export -> import round trips; packs are evidence (security review
findings 10, 11, 13 and 3.x): strict types, no NaN, no baselines or confirmations,
always a source; the judged-against fields travel with their traces.

    .venv/bin/pytest tests/memory/test_packs.py -q
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory import (
    Conflict,
    ExperimentCreate,
    FindingCreate,
    InvalidInput,
    Role,
    Status,
    Store,
    TraceQuery,
    get_store,
)
from memory.embed import Embedder
from memory.packs import export_pack, import_pack, load_pack

REPO = Path(__file__).resolve().parents[2]
COMMUNITY_PACK = REPO / "seeds" / "autoresearch-community.jsonl"


@pytest.fixture
def store(tmp_path: Path, hash_embedder: Embedder) -> Iterator[Store]:
    # packs are about storage: the instant hashing embedder is enough here
    with get_store(tmp_path / "mem", embedder=hash_embedder) as s:
        yield s
        assert s.index_count() == s.count() + s.query_findings(limit=1).count


def everything(store: Store) -> list:
    return store.every_trace(TraceQuery())


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(rows))
    return path


def test_karpathy_pack_content(karpathy_pack: Path) -> None:
    pack = load_pack(karpathy_pack)
    assert pack.name == "karpathy-h100-mar8" and pack.header["records"] == 126
    assert len(pack.traces) == 126 and pack.findings == []
    by_status = {s: sum(t.status == s for t in pack.traces) for s in Status}
    assert (by_status[Status.keep], by_status[Status.discard], by_status[Status.crash]) == (
        23,
        102,
        1,
    )
    first, last = pack.traces[0], pack.traces[-1]
    assert (first.fingerprint, first.metric, first.memory_gb) == ("baseline", 0.9979, 44.0)
    assert first.parent_id is None
    crash = next(t for t in pack.traces if t.status == Status.crash)
    assert crash.fingerprint == "e05a87d" and crash.metric is None and crash.memory_gb is None
    assert all(t.hardware == "1xH100" and "exp/H100/mar8" in t.source for t in pack.traces)
    assert all(t.role == Role.seed and t.task == "autoresearch" for t in pack.traces)
    best = min(t.metric for t in pack.traces if t.metric is not None)
    assert best == 0.969686 == min(t.metric for t in pack.traces if t.status == Status.keep)
    # each run's parent is the latest keep above it
    keeps = {t.id for t in pack.traces if t.status == Status.keep}
    assert all(t.parent_id in keeps for t in pack.traces[1:])
    parent = next(t for t in pack.traces if t.id == last.parent_id)
    assert (last.fingerprint, parent.fingerprint) == ("a6b6476", "438a26e")


def test_community_pack_content() -> None:
    pack = load_pack(COMMUNITY_PACK)
    assert len(pack.findings) == 40 and pack.traces == []
    assert all(f.source and f.hardware and f.pack == pack.name for f in pack.findings)
    assert {f.outcome for f in pack.findings} <= {"keep", "discard", "crash"}


def test_import_twice_adds_nothing(store: Store, karpathy_pack: Path) -> None:
    first = import_pack(store, karpathy_pack)
    assert (first.added_traces, first.skipped) == (126, 0)
    before = everything(store)
    again = import_pack(store, karpathy_pack)
    assert (again.added_traces, again.added_findings, again.skipped) == (0, 0, 126)
    assert everything(store) == before
    # imported traces are evidence: never the champion, but the best keep is there
    assert store.champion("autoresearch", "1xH100") is None
    best = store.query_traces(TraceQuery(task="autoresearch", status=[Status.keep], sort="best"))
    assert best.data[0].fingerprint == "438a26e"


BAD_CASES = [
    # (line number to break, replacement, expected message part)
    (5, '{"type": "trace", "task": "autoresearch", \n', "malformed JSON"),
    (3, None, "field 'type' must be 'trace' or 'finding', got 'banana'"),
    (4, None, "missing required field 'source'"),
    (6, None, "field 'metric'"),
    (7, None, "unknown trace field(s) ['val_bpb']"),
    (8, None, "duplicate id"),
]


def _break(rows: list[str], line: int, replacement: str | None) -> list[str]:
    rows = list(rows)
    if replacement is not None:
        rows[line - 1] = replacement
        return rows
    obj = json.loads(rows[line - 1])
    if line == 3:
        obj["type"] = "banana"
    elif line == 4:
        del obj["source"]
    elif line == 6:
        obj["metric"] = "very good"
    elif line == 7:
        obj["val_bpb"] = obj.pop("metric")
    elif line == 8:
        obj["id"] = json.loads(rows[1])["id"]
    rows[line - 1] = json.dumps(obj) + "\n"
    return rows


@pytest.mark.parametrize(("line", "replacement", "message"), BAD_CASES)
def test_bad_line_fails_with_file_line_and_imports_nothing(
    store: Store,
    tmp_path: Path,
    karpathy_pack: Path,
    line: int,
    replacement: str | None,
    message: str,
) -> None:
    store.add_findings(
        [FindingCreate(id="keep-me", change="x", outcome="note", source="me", hardware="cpu")]
    )
    before = everything(store)
    bad = write(tmp_path / "bad.jsonl", _break(lines(karpathy_pack), line, replacement))
    with pytest.raises(InvalidInput) as info:
        import_pack(store, bad)
    assert str(info.value).startswith(f"{bad}:{line}: ")
    assert message in str(info.value)
    assert everything(store) == before and store.count() == 0
    assert [f.id for f in store.query_findings().data] == ["keep-me"]


def test_duplicate_message_names_the_first_line(tmp_path: Path, karpathy_pack: Path) -> None:
    bad = write(tmp_path / "dup.jsonl", _break(lines(karpathy_pack), 8, None))
    with pytest.raises(InvalidInput, match=r"dup\.jsonl:8: duplicate id .* \(first on line 2\)"):
        load_pack(bad)


def test_partial_files(store: Store, tmp_path: Path, karpathy_pack: Path) -> None:
    rows = lines(karpathy_pack)
    cut_mid_line = write(tmp_path / "cut.jsonl", rows[:50] + [rows[50][:40]])
    with pytest.raises(InvalidInput, match=r"cut\.jsonl:51: malformed JSON"):
        import_pack(store, cut_mid_line)
    cut_at_line = write(tmp_path / "short.jsonl", rows[:100])
    with pytest.raises(InvalidInput, match=r"short\.jsonl:100: header says 126 records .* 99"):
        import_pack(store, cut_at_line)
    assert store.count() == 0


def test_bad_headers(tmp_path: Path, karpathy_pack: Path) -> None:
    rows = lines(karpathy_pack)
    no_header = write(tmp_path / "nohead.jsonl", rows[1:])
    with pytest.raises(InvalidInput, match=r"nohead\.jsonl:1: the first line must be a header"):
        load_pack(no_header)
    header = json.loads(rows[0])
    header["labswarm_pack"] = 2
    future = write(tmp_path / "v2.jsonl", [json.dumps(header) + "\n"] + rows[1:])
    with pytest.raises(InvalidInput, match=r"v2\.jsonl:1: unsupported pack version 2"):
        load_pack(future)
    with pytest.raises(InvalidInput, match="empty pack"):
        load_pack(write(tmp_path / "empty.jsonl", []))
    with pytest.raises(InvalidInput, match="no such pack file"):
        load_pack(tmp_path / "missing.jsonl")


def test_conflicting_pack_is_refused_whole(
    store: Store, tmp_path: Path, karpathy_pack: Path
) -> None:
    import_pack(store, karpathy_pack)
    before = everything(store)
    rows = lines(karpathy_pack)
    obj = json.loads(rows[10])
    obj["metric"] = 0.5  # same id, other content
    extra = dict(json.loads(rows[11]), id="brand-new")
    edited = rows[:10] + [json.dumps(obj) + "\n"] + rows[11:] + [json.dumps(extra) + "\n"]
    header = json.loads(edited[0])
    header["records"] = 127
    edited[0] = json.dumps(header) + "\n"
    with pytest.raises(Conflict, match=obj["id"]):
        import_pack(store, write(tmp_path / "edited.jsonl", edited))
    assert everything(store) == before


# what a verdict was judged against (revision 0003): carried by packs like any field
JUDGED: dict = {
    "seed": 2**31 - 1,
    "reason": "discarded: worse than the base by 0.05 (screen 0.01)",
    "base_metric": 1.25,
    "base_n": 3,
    "judged_metric": 1.3,
    "judged_n": 1,
    "noise_sd": 0.004,
    "noise_n": 3,
    "threshold": 0.01,
}


def _varied(store: Store) -> None:
    t0 = datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)
    store.add_trace(
        ExperimentCreate(
            id="base",
            task="gpt",
            swarm_id="sw",
            agent_id="sw/a0",
            role=Role.baseline,
            hypothesis="baseline",
            fingerprint="fp0",
            status=Status.keep,
            metric=1.25,
            resources={"num_steps": 10},
            hardware="cpu",
            device="cpu[0-1]",
            created_at=t0,
        )
    )
    store.add_trace(
        ExperimentCreate(
            id="kid",
            task="gpt",
            swarm_id="sw",
            agent_id="sw/a0",
            parent_id="base",
            hypothesis="lower LR",
            diff="-LR = 0.1\n+LR = 0.05\n",
            knobs={"LR": [0.1, 0.05]},
            fingerprint="fp1",
            status=Status.discard,
            metric=1.3,
            memory_gb=0.5,
            log_tail="loss 3.2\n---\nval_bpb: 1.3",
            hardware="cpu",
            started_at=t0,
            finished_at=t0,
            duration_s=61.5,
            **JUDGED,
        )
    )
    store.add_trace(  # its confirmation: exported as a seed (packs cannot declare one)
        ExperimentCreate(
            id="kid-again",
            task="gpt",
            swarm_id="sw",
            agent_id="sw/a0",
            parent_id="kid",
            role=Role.confirmation,
            hypothesis="confirmation of kid: lower LR",
            fingerprint="fp1",
            status=Status.discard,
            metric=1.29,
            hardware="cpu",
            **dict(JUDGED, seed=7, judged_metric=1.295, judged_n=2),
        )
    )
    store.add_trace(
        ExperimentCreate(
            task="gpt", swarm_id="other", fingerprint="fp2", status=Status.crash, error="NaN"
        )
    )
    store.add_findings(
        [FindingCreate(id="f", task="gpt", change="c", outcome="keep", source="s", hardware="")]
    )


def test_round_trip_export_import(store: Store, tmp_path: Path, hash_embedder: Embedder) -> None:
    _varied(store)
    out = tmp_path / "swarm.jsonl"
    # 4 traces, 1 finding, and 1 insight (LR down, memory.insights) as a finding
    assert export_pack(store, out, name="swarm", source="lab A") == 6
    with get_store(tmp_path / "fresh", embedder=hash_embedder) as fresh:
        result = import_pack(fresh, out)
        assert (result.added_traces, result.added_findings) == (4, 2)
        # everything as stored (the judged-against fields too), except what makes an
        # import evidence: the pack's source on traces that had none, and the baseline and
        # the confirmation exported as seeds
        judging = (Role.baseline, Role.confirmation)
        want = [
            t.model_copy(
                update={
                    "source": t.source or "lab A",
                    "role": Role.seed if t.role in judging else t.role,
                }
            )
            for t in everything(store)
        ]
        assert everything(fresh) == want
        again = fresh.get_trace("kid-again")
        assert (again.seed, again.judged_n, again.reason) == (7, 2, JUDGED["reason"])
        assert {k: getattr(fresh.get_trace("kid"), k) for k in JUDGED} == JUDGED
        assert fresh.get_trace("base").reason == "" and fresh.get_trace("base").seed is None
        assert import_pack(fresh, out).skipped == 6  # and importing it again adds nothing
        got = next(f for f in fresh.query_findings().data if not f.evidence)
        want_f = store.query_findings().data[0]
        assert got.model_dump(exclude={"created_at"}) == want_f.model_dump(exclude={"created_at"})
        assert fresh.index_count() == 6
    before = everything(store)
    back = import_pack(store, out)  # back into its own store: the same records, and the
    assert (back.skipped, back.added_findings) == (5, 1)  # insight, now as a finding
    assert everything(store) == before


def test_export_a_filter(store: Store, tmp_path: Path) -> None:
    _varied(store)
    out = tmp_path / "sw.jsonl"
    n = export_pack(store, out, name="sw", query=TraceQuery(swarm_id="sw"), findings=False)
    pack = load_pack(out)
    assert n == 3 and pack.findings == []
    assert [(t.id, t.role) for t in pack.traces] == [
        ("base", Role.seed),
        ("kid", Role.experiment),
        ("kid-again", Role.seed),
    ]


# ---------------------------------------------------------------------------
# packs are evidence: strict, finite, no baselines or confirmations, always a source
# ---------------------------------------------------------------------------

HEADER = '{"labswarm_pack": 1, "name": "p"}\n'
TRACE = {
    "type": "trace",
    "task": "gpt",
    "fingerprint": "fp",
    "status": "keep",
    "metric": 1.5,
    "source": "my notes",
    "hardware": "cpu",
}


def pack_of(tmp_path: Path, *records: dict | str, header: str = HEADER) -> Path:
    rows = [header] + [r if isinstance(r, str) else json.dumps(r) + "\n" for r in records]
    return write(tmp_path / "p.jsonl", rows)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": True}, "field 'metric' must be a number or null, got true/false"),
        ({"metric": "1.5"}, "field 'metric' must be a number or null, got a string"),
        ({"memory_gb": False}, "field 'memory_gb' must be a number or null"),
        ({"knobs": [1, 2]}, "field 'knobs' must be an object, got an array"),
        ({"hypothesis": 3}, "field 'hypothesis' must be a string, got an integer"),
        ({"role": "baseline"}, "field 'role': a pack cannot declare role 'baseline'"),
        ({"role": "confirmation"}, "field 'role': a pack cannot declare role 'confirmation'"),
        ({"seed": True}, "field 'seed' must be an integer or null, got true/false"),
        ({"seed": -1}, "field 'seed': Value error, must lie in 0..2147483647, got -1"),
        ({"base_n": 1.5}, "field 'base_n' must be an integer or null, got a number"),
        ({"noise_n": 2**31}, "field 'noise_n': Value error, must lie in 0..2147483647"),
        ({"judged_n": "2"}, "field 'judged_n' must be an integer or null, got a string"),
        ({"noise_sd": -0.5}, "field 'noise_sd': Value error, must not be negative"),
        ({"threshold": "0.1"}, "field 'threshold' must be a number or null, got a string"),
        ({"reason": None}, "field 'reason' must be a string, got null"),
        ({"created_at": "0001-01-01T00:00:00+14:00"}, "field 'created_at'"),
        ({"resources": {"deep": json.loads("[" * 300 + "]" * 300)}}, "deeper than 32"),
        ({"hypothesis": "a\x00b"}, "NUL"),
    ],
)
def test_pack_values_are_strict(store: Store, tmp_path: Path, change: dict, message: str) -> None:
    good = dict(TRACE, fingerprint="fp0")
    bad = pack_of(tmp_path, good, dict(TRACE, **change))
    with pytest.raises(InvalidInput) as info:
        import_pack(store, bad)
    assert str(info.value).startswith(f"{bad}:3: ")
    assert message in str(info.value)
    assert store.count() == 0


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_pack_with_bare_nan_is_refused(store: Store, tmp_path: Path, constant: str) -> None:
    line = json.dumps(TRACE).replace("1.5", constant) + "\n"
    bad = pack_of(tmp_path, line)
    with pytest.raises(InvalidInput, match=rf"p\.jsonl:2: {constant} is not a number"):
        import_pack(store, bad)
    assert store.count() == 0


def test_too_deep_pack_line_is_a_file_line_error(store: Store, tmp_path: Path) -> None:
    deep = '{"type": "trace", "resources": ' + "[" * 200_000 + "]" * 200_000 + "}\n"
    bad = pack_of(tmp_path, TRACE, deep)
    with pytest.raises(InvalidInput, match=r"p\.jsonl:3: nested too deeply"):
        import_pack(store, bad)
    assert store.count() == 0


def test_finding_outcome_is_checked(store: Store, tmp_path: Path) -> None:
    finding = {"type": "finding", "change": "c", "outcome": "<img>", "source": "s", "hardware": ""}
    bad = pack_of(tmp_path, finding)
    with pytest.raises(InvalidInput, match=r"p\.jsonl:2: field 'outcome'"):
        import_pack(store, bad)


def test_imported_traces_always_have_a_source(store: Store, tmp_path: Path) -> None:
    anonymous = dict(TRACE, source="")
    named = pack_of(
        tmp_path, anonymous, header='{"labswarm_pack": 1, "name": "p", "source": "lab B"}\n'
    )
    assert import_pack(store, named).added_traces == 1
    (t,) = everything(store)
    assert t.source == "lab B"
    assert import_pack(store, named).skipped == 1  # idempotent
    unnamed = write(
        tmp_path / "notes.jsonl", [HEADER, json.dumps(dict(anonymous, task="x")) + "\n"]
    )
    import_pack(store, unnamed)
    assert {t.task: t.source for t in everything(store)} == {
        "gpt": "lab B",
        "x": "pack:notes.jsonl",
    }
    assert all(t.source for t in everything(store))


def test_shipped_packs_import(store: Store, karpathy_pack: Path) -> None:
    result = import_pack(store, COMMUNITY_PACK)
    assert (result.added_findings, result.skipped) == (40, 0)
    assert import_pack(store, karpathy_pack).added_traces == 126
    assert all(t.source for t in everything(store))
    assert import_pack(store, COMMUNITY_PACK).skipped == 40
