"""The memory subcommands of ``labswarm``, run through the real entry point.

.venv/bin/pytest tests/memory/test_cli.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agents.cli import main
from memory import Status, TraceQuery, get_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # the CLI takes the embedder from $LABSWARM_EMBEDDER; hashing keeps these tests quick
    monkeypatch.setenv("LABSWARM_EMBEDDER", "hash")
    monkeypatch.delenv("LABSWARM_MEMORY", raising=False)
    return str(tmp_path / "mem")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_search_show_stats_reindex(
    mem: str, karpathy_pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    community = str(REPO / "seeds" / "autoresearch-community.jsonl")
    code, out, _ = run(capsys, "seed", str(karpathy_pack), community, "--memory", mem)
    assert code == 0
    assert "added 126 traces and 0 findings, skipped 0" in out
    assert "added 0 traces and 40 findings" in out
    code, out, _ = run(capsys, "seed", str(karpathy_pack), "--memory", mem)
    assert "added 0 traces and 0 findings, skipped 126 already present" in out

    code, out, _ = run(capsys, "search", "RoPE base frequency", "--memory", mem, "-k", "3")
    assert code == 0 and "RoPE base" in out and len(out.splitlines()) == 3
    with pytest.raises(SystemExit):  # the flag is named, not the store's parameter
        main(["search", "RoPE", "-k", "0", "--memory", mem])
    assert "argument -k: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # beyond one read's most: the flag, not search.limit
        main(["search", "RoPE", "-k", "1001", "--memory", mem])
    assert "argument -k: must be at most 1000, got 1001" in capsys.readouterr().err
    code, out, _ = run(
        capsys,
        "search",
        "weight decay",
        "--status",
        "crash",
        "--kind",
        "trace",
        "--json",
        "--memory",
        mem,
    )
    hits = json.loads(out)
    assert [h["experiment"]["fingerprint"] for h in hits] == ["e05a87d"]

    code, out, _ = run(capsys, "memory", "stats", "--memory", mem)
    assert code == 0 and "traces       126" in out and "discard     102" in out
    assert "keep rate    18.4%  (23 changes kept by a verdict)" in out
    assert "findings     40" in out and "tasks        autoresearch  126 traces" in out
    code, out, _ = run(capsys, "memory", "reindex", "--full", "--memory", mem)
    assert code == 0 and "indexed 166 rows; the index holds 166 items for 166 SQL rows" in out

    with get_store(mem) as store:  # the pack's best keep (evidence: never the champion)
        best = store.query_traces(
            TraceQuery(task="autoresearch", status=[Status.keep], sort="best", limit=1)
        )
        assert store.champion("autoresearch") is None
    champ = best.data[0]
    code, out, _ = run(capsys, "show", champ.id, "--memory", mem)
    assert code == 0 and "warmdown 0.7 to 0.75" in out and "0.969686" in out
    assert "ancestors   22" in out
    code, _, err = run(capsys, "show", "nope", "--memory", mem)
    assert code == 1 and "no experiment with id 'nope'" in err


def test_export_formats(
    mem: str, karpathy_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "seed", str(karpathy_pack), "--memory", mem)
    code, out, _ = run(capsys, "export", "--memory", mem)
    assert code == 0 and out.startswith("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n")
    assert len(out.splitlines()) == 127
    code, out, _ = run(capsys, "export", "--status", "keep", "--memory", mem)
    assert len(out.splitlines()) == 24
    png = tmp_path / "progress.png"
    code, out, _ = run(capsys, "export", "-o", str(png), "--memory", mem)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    pack = tmp_path / "keeps.jsonl"
    code, out, _ = run(capsys, "export", "--status", "keep", "-o", str(pack), "--memory", mem)
    assert code == 0 and "with 23 records" in out
    other = str(tmp_path / "other")
    code, out, _ = run(capsys, "seed", str(pack), "--memory", other)
    assert "added 23 traces" in out
    csv = tmp_path / "results.csv"  # not written tab-separated under a .csv name
    code, _, err = run(capsys, "export", "-o", str(csv), "--memory", mem)
    assert code == 1 and not csv.exists()
    assert "has no suffix of a format labswarm writes (.tsv, .png, .jsonl, .json)" in err
    code, out, _ = run(capsys, "export", "-o", str(csv), "--format", "tsv", "--memory", mem)
    assert code == 0 and csv.read_text().startswith("commit\tval_bpb\t")


def test_bad_pack_reports_file_line_and_imports_nothing(
    mem: str, karpathy_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = karpathy_pack.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(rows[:30] + ["{not json\n"] + rows[31:]))
    code, out, err = run(capsys, "seed", str(karpathy_pack), str(bad), "--memory", mem)
    assert code == 1 and f"{bad}:31: malformed JSON" in err
    assert out == ""  # the good pack given first was not imported either
    with get_store(mem) as store:
        assert store.count() == 0


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from agents.cli import build_parser; build_parser(); "
        "import memory; "
        "print([m for m in ('chromadb', 'torch', 'sentence_transformers') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "[]"
