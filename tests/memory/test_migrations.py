"""Schema migrations: a memory written by older code -- the last release (0.1.0, commit
2ce97fd), the last code at revision 0002 (commit 92b494d) and at revision 0003 (commit
8c5fc59) -- opens with this code, is
upgraded in place and loses nothing (the fields added since read back honestly empty); a new
memory is created at the head; a memory from a newer labswarm is refused; the head
downgrades; concurrent first opens migrate exactly once.

The old memory is written by the old code itself: ``git archive <commit> memory`` is
unpacked into a temporary directory and a subprocess runs with it first on ``sys.path``.

    .venv/bin/pytest tests/memory/test_migrations.py -q
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import SQLModel

from memory import (
    AlreadyClaimed,
    AlreadyRan,
    BackendUnavailable,
    ClaimCreate,
    ClaimPublic,
    ExperimentCreate,
    Role,
    Status,
    Store,
    TraceQuery,
    get_store,
)
from memory import migrations as mig
from memory._sql import make_engine
from tests.backends import ChromaServer, PostgresDatabase

REPO = Path(__file__).resolve().parents[2]
RELEASE = "2ce97fd"  # labswarm 0.1.0
# old code -> (commit of its memory package, the revision its memories are at: None = no
# alembic_version, the revision whose schema it has)
OLD_CODE = {
    "0.1.0": (RELEASE, None, "0001"),
    "0002": ("92b494d", "0002", "0002"),  # the last memory/ at revision 0002
    "0003": ("8c5fc59", "0003", "0003"),  # the last memory/ at revision 0003
}
# 0004: proposer, matched_id, near_duplicate; 0005: finding evidence; 0006: remeasure;
# 0007: short, short_id
HEAD = "0007"
# what revisions 0003, 0004 and 0007 added, and the value every older row reads back with
NEW_TRACE_FIELDS = {
    "seed": None,
    "reason": "",
    "base_metric": None,
    "base_n": None,
    "judged_metric": None,
    "judged_n": None,
    "noise_sd": None,
    "noise_n": None,
    "threshold": None,
    "proposer": "",  # 0004: who proposed it was not recorded
    "matched_id": "",
    "short_id": "",  # 0007: no older run was promoted from a short run
}
NEW_CLAIM_FIELDS = {"hardware": "", "budget_s": None}

# ---------------------------------------------------------------------------
# the released code, and what it writes
# ---------------------------------------------------------------------------

# Runs under the RELEASED memory package (0.1.0 API only). argv: target store, task, out file.
OLD_WRITER = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    import memory
    assert memory.__file__.startswith(sys.argv[4]), memory.__file__  # the old code, not ours
    from memory import (AgentCreate, ClaimCreate, ExperimentCreate, FindingCreate,
                        SwarmCreate, get_store)

    target, task, out = sys.argv[1], sys.argv[2], sys.argv[3]
    t0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    store = get_store(target, embedder="hash")
    store.upsert_swarm(SwarmCreate(id="sw1", task=task, name="old swarm", hardware="cpu",
                                   config={"agents": 2, "budget": 60}))
    store.upsert_agent(AgentCreate(swarm_id="sw1", name="agent-0", device="cpu[0]",
                                   status="running", base_id="t1",
                                   hypothesis="tune the warmdown", experiments=3))
    common = dict(task=task, swarm_id="sw1", agent_id="sw1/agent-0", hardware="cpu",
                  device="cpu[0]")
    traces = [
        dict(id="t1", role="baseline", fingerprint="fp1", status="keep", metric=1.0,
             hypothesis="baseline replicate of the unmodified program",
             resources={"budget_s": 60, "peak_memory_mb": 512.5}, memory_gb=0.5,
             started_at=t0, finished_at=t0, duration_s=61.5, log_tail="step 10 loss 2.0"),
        dict(id="t2", parent_id="t1", fingerprint="fp2", status="keep", metric=0.95,
             hypothesis="raise the matrix learning rate",
             diff="--- a/train.py\\n+++ b/train.py\\n-MATRIX_LR = 0.04\\n+MATRIX_LR = 0.05\\n",
             knobs={"MATRIX_LR": [0.04, 0.05]}, resources={"budget_s": 60.0}),
        dict(id="t3", parent_id="t2", fingerprint="fp3", status="discard", metric=0.99,
             hypothesis="shorter warmdown schedule", resources={}),
        dict(id="t4", parent_id="t2", fingerprint="fp4", status="crash",
             hypothesis="double the model depth", error="CUDA out of memory",
             resources={"budget_s": "300"}),
        dict(id="t5", fingerprint="fp5", status="timeout", direction="minimize",
             hypothesis="bigger batch with gradient accumulation",
             resources={"budget_s": 300, "nested": {"a": [1, 2]}}),
    ]
    for t in traces:
        store.add_trace(ExperimentCreate(**(common | t)))
    seed = ExperimentCreate(id="s1", task=task, role="seed", fingerprint="fps",
                            status="keep", metric=0.9, source="pack karpathy-h100",
                            hypothesis="rotary embedding base frequency sweep")
    findings = [
        FindingCreate(id="f1", task=task, change="remove the value embeddings",
                      outcome="discard", before=0.98, after=0.99, hardware="1xH100",
                      source="https://example.org/log", pack="community"),
        FindingCreate(id="f2", task="", change="softcap the logits at fifteen",
                      outcome="keep", source="a person"),
    ]
    store.import_records([seed], findings)
    live = store.claim(ClaimCreate(id="c1", task=task, fingerprint="fp-live",
                                   swarm_id="sw1", agent_id="sw1/agent-0",
                                   hypothesis="warmup ratio sweep", knobs={"WARMUP": [0, 1]}))
    store.claim(ClaimCreate(id="c2", task=task, fingerprint="fp-done"))
    done = store.release("c2")
    dump = lambda m: m.model_dump(mode="json")
    ids = [t["id"] for t in traces] + ["s1"]
    json.dump({
        "traces": [dump(store.get_trace(i)) for i in ids],
        "findings": [dump(f) for f in store.query_findings(limit=100).data],
        "claims": {"live": dump(live), "released": dump(done)},
        "swarms": [dump(s) for s in store.list_swarms()],
        "agents": [dump(a) for a in store.list_agents()],
    }, open(out, "w"))
    store.close()
    """
)

# budget_s each trace must have after the upgrade (a string or a missing value is no budget)
EXPECTED_BUDGET = {"t1": 60.0, "t2": 60.0, "t3": None, "t4": None, "t5": 300.0, "s1": None}


def unpack(commit: str, root: Path) -> Path:
    """The ``memory`` package of ``commit``, unpacked from git history into ``root``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "memory"], capture_output=True
    )
    if archive.returncode != 0:
        pytest.fail(
            f"git archive {commit} failed ({archive.stderr.decode().strip()}): this test "
            "needs the git history (a full clone, not a shallow one or an unpacked "
            "tarball); run `git fetch --unshallow` and retry"
        )
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    assert (root / "memory" / "_sql.py").exists()
    return root


class OldCode(NamedTuple):
    path: Path  # holds the old ``memory`` package
    found: str | None  # the revision its memories are at (None: no alembic_version)
    schema_of: str  # the revision whose schema its memories have


@pytest.fixture(scope="module", params=sorted(OLD_CODE))
def release(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OldCode:
    """An older ``memory`` package (each of ``OLD_CODE``), unpacked from git history."""
    commit, found, schema_of = OLD_CODE[request.param]
    path = unpack(commit, tmp_path_factory.mktemp(f"release-{request.param}"))
    return OldCode(path, found, schema_of)


def write_with_release(release: Path, target: str, task: str, out: Path) -> dict[str, Any]:
    """Run the released code on ``target``; returns what it read back after writing."""
    script = out.with_suffix(".py")
    script.write_text(OLD_WRITER)
    env = os.environ | {"PYTHONPATH": str(release), "LABSWARM_EMBEDDER": "hash"}
    done = subprocess.run(
        [sys.executable, str(script), target, task, str(out), str(release)],
        cwd=release,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chroma server of this module's own (the old code's hashed collections stay here)."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "data")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg() -> Iterator[PostgresDatabase]:
    db = PostgresDatabase()
    try:
        yield db
    finally:
        db.drop()


def version_of(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return mig.current(conn)


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------


def assert_intact(store: Store, old: dict[str, Any], task: str) -> None:
    """Every record the old code read back is read back the same by this code; the fields
    added since read back honestly empty."""
    for before in old["traces"]:
        after = store.get_trace(before["id"]).model_dump(mode="json")
        before = dict(before)
        before.pop("budget_s", None)  # written by the 0002 code, not by 0.1.0
        assert after.pop("budget_s") == EXPECTED_BUDGET[before["id"]], before["id"]
        # what the old code wrote of these (0003's: nothing set) reads back empty as well
        assert {k: before.pop(k, v) for k, v in NEW_TRACE_FIELDS.items()} == NEW_TRACE_FIELDS
        assert {k: after.pop(k) for k in NEW_TRACE_FIELDS} == NEW_TRACE_FIELDS, before["id"]
        assert after == before, before["id"]
    findings = {f.id: f.model_dump(mode="json") for f in store.query_findings(limit=100).data}
    # revision 0005's finding.evidence reads back {} in older rows (nothing backfilled)
    assert {k: f.pop("evidence") for k, f in findings.items()} == {k: {} for k in findings}
    assert findings == {f["id"]: f for f in old["findings"]}

    def claim_dump(claim: ClaimPublic) -> dict[str, Any]:
        data = claim.model_dump(mode="json")
        assert {k: data.pop(k) for k in NEW_CLAIM_FIELDS} == NEW_CLAIM_FIELDS, claim.id
        return data

    def old_claim(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)  # what the 0003 code wrote of the new fields: empty as well
        assert {k: data.pop(k, v) for k, v in NEW_CLAIM_FIELDS.items()} == NEW_CLAIM_FIELDS
        return data

    live = [claim_dump(c) for c in store.active_claims(task)]
    assert live == [old_claim(old["claims"]["live"])]
    # releasing is idempotent and returns the stored claim: the released one is intact
    assert claim_dump(store.release("c2")) == old_claim(old["claims"]["released"])
    assert [s.model_dump(mode="json") for s in store.list_swarms()] == old["swarms"]
    assert [a.model_dump(mode="json") for a in store.list_agents()] == old["agents"]
    # the claim lock rows came along: the live fingerprint is still held
    with pytest.raises(AlreadyClaimed):
        store.claim(ClaimCreate(task=task, fingerprint="fp-live"))
    # searchable: every trace and finding is found by its own words (hashing embedder)
    for before in old["traces"]:
        hits = store.search(before["hypothesis"], kinds=("trace",), task=task, limit=3)
        assert before["id"] in [h.id for h in hits], before["hypothesis"]
    for before in old["findings"]:
        hits = store.search(before["change"], kinds=("finding",), task=task, limit=3)
        assert before["id"] in [h.id for h in hits], before["change"]
    # the new status and fields (revision 0004) are stored and read back in the old table
    store.add_trace(
        ExperimentCreate(
            id="t3-near",
            task=task,
            parent_id="t2",
            fingerprint="fp3-near",
            status=Status.near_duplicate,
            hardware="cpu",
            budget_s=30.0,
            proposer="hybrid:llm",
            matched_id="t3",
            reason="too near to trace t3",
        )
    )
    near = store.get_trace("t3-near")
    assert (near.status, near.proposer, near.matched_id) == (
        Status.near_duplicate,
        "hybrid:llm",
        "t3",
    )
    assert [
        t.id for t in store.query_traces(TraceQuery(task=task, status=[Status.near_duplicate])).data
    ] == ["t3-near"]
    # the budget column answers SQL queries
    assert {t.id for t in store.query_traces(TraceQuery(task=task, budget_s=60)).data} == {
        "t1",
        "t2",
    }
    # the champion needs two trusted keeps of one program: t2 kept once (and the seed s1,
    # 0.9, is evidence only), so there is none yet ...
    assert store.champion(task, "cpu", 60) is None
    # ... nor after a confirmation of t2 (revision 0003's role) keeps it again ...
    store.add_trace(
        ExperimentCreate(
            id="t2-confirm",
            task=task,
            role=Role.confirmation,
            parent_id="t2",
            fingerprint="fp2",
            status=Status.keep,
            metric=0.97,
            hardware="cpu",
            budget_s=60.0,
            **JUDGED,
        )
    )
    again = store.get_trace("t2-confirm")
    assert {k: getattr(again, k) for k in JUDGED} == JUDGED
    # ... and the two runs that made it a keep are not enough: two re-measures (the role
    # of revision 0006), runs no verdict chose, make it the champion
    assert store.champion(task, "cpu", 60) is None
    for i in (1, 2):
        store.add_trace(
            ExperimentCreate(
                id=f"r{i}-t2",
                task=task,
                role=Role.remeasure,
                parent_id="t2",
                fingerprint="fp2",
                status=Status.keep,
                metric=0.96,
                hardware="cpu",
                budget_s=60.0,
            )
        )
    assert store.get_trace("r1-t2").role == Role.remeasure
    champ = store.champion(task, "cpu", 60)
    assert champ is not None and champ.id == "t2"
    assert store.champion(task, "cpu", 30) is None
    # an old run makes its program seen on its own hardware and budget only
    seen = store.seen(task, "fp3", hardware="cpu")
    assert seen is not None and seen.id == "t3"
    assert store.seen(task, "fp3", hardware="1xH100") is None
    assert store.seen(task, "fp5") is None  # t5 timed out: not seen
    with pytest.raises(AlreadyRan, match="t2"):
        store.claim(ClaimCreate(task=task, fingerprint="fp2", hardware="cpu", budget_s=60.0))
    other = store.claim(ClaimCreate(task=task, fingerprint="fp2", hardware="cpu", budget_s=300))
    assert (other.hardware, other.budget_s) == ("cpu", 300.0)
    store.release(other.id)


# what a verdict was judged against, as a judge records it (revision 0003)
JUDGED: dict[str, Any] = {
    "seed": 2**31 - 1,
    "reason": "kept: better by 0.03 over 2 runs, margin 0.021",
    "base_metric": 1.0,
    "base_n": 1,
    "judged_metric": 0.96,
    "judged_n": 2,
    "noise_sd": 0.01,
    "noise_n": 3,
    "threshold": 0.021,
}


def upgrade_and_check(release: OldCode, target: str, db_url: str, tmp_path: Path) -> None:
    task = f"mig-{uuid.uuid4().hex[:8]}"
    old = write_with_release(release.path, target, task, tmp_path / "old.json")
    engine = make_engine(db_url)
    try:
        assert version_of(engine) == release.found  # 0.1.0 had no alembic_version
        assert_same_schema(engine, built_by_revision(engine, release.schema_of))
        with get_store(target, embedder="hash") as store:
            assert version_of(engine) == HEAD
            assert_intact(store, old, task)
        with get_store(target, embedder="hash") as store:  # a second open is a no-op
            assert version_of(engine) == HEAD
            # + a confirmation, a near duplicate and two re-measures
            assert store.count() == len(old["traces"]) + 4
        assert mig.upgrade(engine) == HEAD  # nothing left to do
        assert_head_matches_models(engine)
    finally:
        engine.dispose()


def schema(engine: Engine) -> dict[str, Any]:
    """Tables, columns (name, type, nullable), primary keys and indexes, comparable."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
        }
    if engine.dialect.name == "postgresql":
        out["enums"] = sorted((e["name"], tuple(e["labels"])) for e in insp.get_enums())  # type: ignore[attr-defined]
    return out


def built_by_revision(like: Engine, revision: str) -> dict[str, Any]:
    """The schema that revision ``revision`` builds in a new database of ``like``'s kind."""
    if like.dialect.name == "sqlite":
        path = Path(str(like.url.database)).with_name(f"rev-{revision}.sqlite")
        fresh = create_engine(f"sqlite:///{path}")
        drop = None
    else:
        drop = PostgresDatabase()
        fresh = create_engine(drop.url)
    try:
        with fresh.begin() as conn:
            command.upgrade(mig.alembic_config(conn), revision)
        return schema(fresh)
    finally:
        fresh.dispose()
        if drop is not None:
            drop.drop()


def assert_same_schema(engine: Engine, expected: dict[str, Any]) -> None:
    assert schema(engine) == expected


def assert_head_matches_models(engine: Engine) -> None:
    """The head revision builds exactly the tables the SQLModel classes define (a column
    added to ``memory/models.py`` without a migration fails here)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff
    if engine.dialect.name == "postgresql":  # autogenerate does not compare enum labels
        enums = dict(schema(engine)["enums"])
        assert enums["status"] == tuple(s.value for s in Status)
        assert enums["role"] == tuple(r.value for r in Role)


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


def test_released_embedded_memory_upgrades_intact(release: OldCode, tmp_path: Path) -> None:
    home = tmp_path / "mem"
    upgrade_and_check(release, str(home), f"sqlite:///{home / 'memory.sqlite'}", tmp_path)


@pytest.mark.postgres
def test_released_team_memory_upgrades_intact(
    release: OldCode, pg: PostgresDatabase, chroma: str, tmp_path: Path
) -> None:
    upgrade_and_check(release, f"{pg.url}?chroma={chroma}", pg.url, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_new_memory_is_created_at_head_and_refused_when_newer(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = PostgresDatabase() if kind == "postgres" else None
    url = db.url if db is not None else f"sqlite:///{tmp_path / 'new.sqlite'}"
    engine = make_engine(url)
    try:
        with caplog.at_level(logging.INFO, logger="memory.migrations"):
            assert mig.upgrade(engine) == "none"
        said = [r.getMessage() for r in caplog.records]
        # a new memory is created, not "upgraded from none"
        assert any(f"a new memory; creating its schema at {HEAD}" in m for m in said)
        assert not any("upgrading" in m for m in said)
        assert version_of(engine) == HEAD
        assert_head_matches_models(engine)
        assert mig.upgrade(engine) == HEAD  # opening twice: nothing to do
        with engine.begin() as conn:  # as if a newer labswarm had migrated it
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(BackendUnavailable) as info:
            mig.upgrade(engine)
        assert "9999_future" in str(info.value) and "upgrade labswarm" in str(info.value)
        assert version_of(engine) == "9999_future"  # nothing was changed
    finally:
        engine.dispose()
        if db is not None:
            db.drop()


def test_partial_labswarm_tables_are_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'odd.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE experiment (id TEXT PRIMARY KEY)"))
        with pytest.raises(BackendUnavailable, match="not a memory this labswarm can upgrade"):
            mig.upgrade(engine)
        assert version_of(engine) is None
    finally:
        engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade to ``revision`` in one transaction, as ``mig.upgrade`` migrates (on SQLite
    the driver's own transactions would leave a refused downgrade's copied table behind)."""
    eng = mig._migration_engine(engine)
    try:
        with eng.connect() as conn, conn.begin():
            command.downgrade(mig.alembic_config(conn), revision)
    finally:
        eng.dispose()


_INSERT = """
    INSERT INTO experiment (task, role, hypothesis, diff, knobs, fingerprint, status,
        metric_name, direction, resources, log_tail, error, device, hardware, source, id,
        created_at, indexed, reason{columns})
    VALUES ('t', '{role}', '', '', '{{}}', 'fp', '{status}', 'val_bpb', 'minimize', '{{}}', '',
        '', '', 'cpu', '', '{id}', '2026-03-08 12:00:00+00:00', false, 'why'{values})
"""
# (the revision a downgrade goes to, the row that revision cannot read, its label)
_LOST_ON_DOWNGRADE = {
    "confirmation": (
        "0002",
        _INSERT.format(columns="", role="confirmation", status="keep", id="c1", values=""),
    ),
    "near_duplicate": (
        "0003",
        _INSERT.format(
            columns=", proposer, matched_id",
            role="experiment",
            status="near_duplicate",
            id="c1",
            values=", 'llm', 't0'",
        ),
    ),
    "remeasure": (
        "0005",
        _INSERT.format(
            columns=", parent_id", role="remeasure", status="keep", id="c1", values=", 'e1'"
        ),
    ),
    "short": (
        "0006",
        _INSERT.format(
            columns=", parent_id", role="short", status="discard", id="c1", values=", 'e1'"
        ),
    ),
}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("label", sorted(_LOST_ON_DOWNGRADE))
def test_head_downgrades_unless_a_newer_label_would_be_lost(
    kind: str, label: str, tmp_path: Path
) -> None:
    """The head downgrades to the revision before a label (a role or status) existed,
    and back up again -- refused, with nothing changed, while a row holds that label."""
    revision, row = _LOST_ON_DOWNGRADE[label]
    db = PostgresDatabase() if kind == "postgres" else None
    url = db.url if db is not None else f"sqlite:///{tmp_path / 'down.sqlite'}"
    engine = make_engine(url)
    try:
        mig.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text(row))
        with pytest.raises(RuntimeError, match=f"1 trace.*{label}"):
            downgrade(engine, revision)
        assert version_of(engine) == HEAD  # rolled back: nothing was changed
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM experiment WHERE id = 'c1'"))
        downgrade(engine, revision)
        assert version_of(engine) == revision
        assert_same_schema(engine, built_by_revision(engine, revision))
        assert mig.upgrade(engine) == revision  # and up again
        assert_head_matches_models(engine)
        with engine.begin() as conn:
            conn.execute(text(row))  # the label is back
    finally:
        engine.dispose()
        if db is not None:
            db.drop()


def test_a_new_sqlite_file_switches_to_wal_once_another_writer_lets_go(tmp_path: Path) -> None:
    """SQLite refuses the switch to WAL at once (no busy wait) while another connection
    holds the write lock of a file still in rollback mode, as when several processes open
    one new memory together; opening waits for the lock instead of failing."""
    path = tmp_path / "busy.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")  # the write lock, the file in rollback mode
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # what SQLite does
        sqlite3.connect(path, timeout=5.0).execute("PRAGMA journal_mode=WAL")
    release = threading.Timer(0.5, lambda: (other.execute("COMMIT"), other.close()))
    release.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        release.join()
        engine.dispose()


# Each process waits for the same wall-clock instant, then opens (migrates) the database.
RACER = textwrap.dedent(
    """
    import sys, time
    from memory import migrations
    from memory._sql import make_engine
    url, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))
    engine = make_engine(url)
    print(migrations.upgrade(engine))
    engine.dispose()
    """
)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_first_opens_migrate_once(kind: str, tmp_path: Path) -> None:
    """Whatever the interleaving, exactly one process finds the database new and migrates
    it; the others wait for its lock and find it at the head."""
    db = PostgresDatabase() if kind == "postgres" else None
    url = db.url if db is not None else f"sqlite:///{tmp_path / 'race.sqlite'}"
    try:
        start = time.time() + 4.0  # after every interpreter has started
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, url, str(start)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [p.communicate(timeout=120) for p in procs]
        for p, (_, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err[-3000:]
        befores = sorted(out.strip() for out, _ in results)
        assert befores == [HEAD, HEAD, "none"]
        engine = make_engine(url)
        try:
            assert version_of(engine) == HEAD
            assert_head_matches_models(engine)
        finally:
            engine.dispose()
    finally:
        if db is not None:
            db.drop()
