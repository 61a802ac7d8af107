"""benchmarks/search_per_configuration.py pairs two arms' searches by seed."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import search_per_configuration as spc  # noqa: E402
from yardstick import to_json  # noqa: E402
from yardstick_arms import ArmSeed, Run  # noqa: E402


def _arm(arm: str, seed: int, trues: list[float]) -> ArmSeed:
    runs = [
        Run(
            id=f"{arm}-{seed}-{i}",
            worker="w",
            config={"X": float(i)},
            ok=True,
            observed=t,
            true=t,
            started=float(i),
            ended=i + 0.5,
            duration=0.5,
            candidate=True,
        )
        for i, t in enumerate(trues)
    ]
    return ArmSeed(arm, "smooth", seed, runs, wall_s=1.0, start_true=9.0)


def _write(path: Path, arm_seeds: list[ArmSeed], compress: bool = False) -> Path:
    text = "".join(to_json(a) + "\n" for a in arm_seeds)
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _rows(out: str) -> dict[str, list[str]]:
    rows = [line.strip("| ").split(" | ") for line in out.splitlines() if line.startswith("| ")]
    return {r[1]: r for r in rows[1:] if r[0] == "smooth"}


def test_best_of_the_first_configurations_paired_by_seed(tmp_path, capsys):
    # seed s: "random" finds 4 - s/10 among its first two configurations and 3 among three;
    # "optuna-shared" 4.2 among two and 1 among three; each hands over its best trial
    a = _write(
        tmp_path / "a.jsonl", [_arm("random", s, [5.0, 4.0 - s / 10, 3.0]) for s in range(4)]
    )
    b = _write(
        tmp_path / "b.jsonl",
        [_arm("optuna-shared", s, [4.5, 4.2, 1.0]) for s in range(4)],
        compress=True,  # read through its .gz, as the shipped results are kept
    )
    code = spc.main(
        [
            "--a",
            f"random={a}",
            "--b",
            f"optuna-shared={b}",
            "--landscapes",
            "smooth",
            "--k",
            "2,3",
            "--handed",
            "3",
        ]
    )
    assert code == 0
    rows = _rows(capsys.readouterr().out)
    two = rows["best of the first 2 configurations"]
    assert two[2:6] == ["4", "3.850", "4.200", "4 / 0"]
    three = rows["best of the first 3 configurations"]
    assert three[2:6] == ["4", "3.000", "1.000", "0 / 4"]
    assert rows["handed over after 3"][2:6] == ["4", "3.000", "1.000", "0 / 4"]


def test_an_arm_s_runs_are_averaged_per_seed_and_only_common_seeds_count(tmp_path, capsys):
    first = _write(tmp_path / "r1.jsonl", [_arm("random", s, [4.0, 3.0]) for s in range(3)])
    again = _write(tmp_path / "r2.jsonl", [_arm("random", s, [4.0, 3.4]) for s in range(2)])
    b = _write(tmp_path / "b.jsonl", [_arm("optuna-shared", s, [3.5, 3.1]) for s in range(3)])
    spc.main(
        [
            "--a",
            f"random={first}+{again}",
            "--b",
            f"optuna-shared={b}",
            "--landscapes",
            "smooth",
            "--k",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert "random (2 run(s))" in out
    row = _rows(out)["best of the first 2 configurations"]
    assert row[2:5] == ["2", "3.200", "3.100"]  # seeds 0 and 1: (3.0 + 3.4) / 2


def test_bad_arms_are_refused_naming_them(tmp_path, capsys):
    raw = _write(tmp_path / "a.jsonl", [_arm("random", 0, [4.0])])
    assert spc.main(["--a", "random", "--b", f"random={raw}"]) == 2
    assert "'random': expected NAME=FILE" in capsys.readouterr().err
    assert spc.main(["--a", f"random={tmp_path / 'none.jsonl'}", "--b", f"random={raw}"]) == 2
    assert "none.jsonl: no such file" in capsys.readouterr().err
    assert spc.main(["--a", f"optuna-shared={raw}", "--b", f"random={raw}"]) == 2
    assert "holds no arm-seed of arm 'optuna-shared'" in capsys.readouterr().err
    assert spc.main(["--a", f"random={raw}", "--b", f"random={raw}", "--k", "x"]) == 2
    assert "--k" in capsys.readouterr().err
