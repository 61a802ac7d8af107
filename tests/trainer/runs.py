"""Run ``train.py`` for real, as the runner does, and read its summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from trainer import TASK_DIR


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    wall: float

    def summary(self) -> dict[str, str]:
        """The ``key: value`` lines after the last ``---`` line of stdout."""
        lines = self.stdout.splitlines()
        assert "---" in lines, f"no summary in stdout:\n{self.stdout}\n{self.stderr[-2000:]}"
        tail = lines[len(lines) - 1 - lines[::-1].index("---") + 1 :]
        return dict(line.split(": ", 1) for line in tail if line.strip())


def write_small_corpus(root: Path) -> Path:
    """20 text files of 3 KB of Shakespeare in ``root`` (for ``LABSWARM_CORPUS``): 2 are
    held out, so the evaluation scores ~6 KB instead of 128 KB (a run costs seconds)."""
    from trainer import prepare

    root.mkdir(parents=True, exist_ok=True)
    works = prepare.load_embedded().train
    for i in range(20):
        (root / f"doc{i:02d}.txt").write_text(works[i][1][5000:8000], encoding="utf-8")
    return root


def copy_task(dest: Path) -> Path:
    """A copy of the task directory (as an agent's workspace holds it)."""
    shutil.copytree(TASK_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def edited_task(dest: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of the task directory whose ``train.py`` has each ``(old, new)`` replaced; each
    ``old`` must occur exactly once (so a change in train.py breaks the test, not silently)."""
    copy_task(dest)
    train = dest / "train.py"
    text = train.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in train.py"
        text = text.replace(old, new)
    train.write_text(text, encoding="utf-8")
    return dest


def run_train(
    task_dir: Path, budget: float, cache: Path, extra_env: dict[str, str] | None = None
) -> Run:
    """Run ``python train.py`` in ``task_dir`` on one CPU thread with the given budget."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABSWARM_")}
    env.pop("PYTHONPATH", None)
    env.update(
        LABSWARM_TIME_BUDGET=str(budget),
        LABSWARM_DEVICE="cpu",
        LABSWARM_THREADS="1",
        OMP_NUM_THREADS="1",
        LABSWARM_CACHE_DIR=str(cache),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra_env or {})
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "train.py"],
        cwd=task_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=budget * 2 + 120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def set_knobs(train_py: Path, **knobs: object) -> None:
    """Rewrite knob lines ``NAME = value`` of a copied ``train.py`` (as the proposer does)."""
    lines = train_py.read_text().splitlines(keepends=True)
    for name, value in knobs.items():
        hits = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
        assert len(hits) == 1, f"knob {name} found {len(hits)} times"
        lines[hits[0]] = f"{name} = {value!r}\n"
    train_py.write_text("".join(lines))
