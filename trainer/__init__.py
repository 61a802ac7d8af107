"""The built-in task: a small GPT trained for a fixed time budget, scored by val_bpb.

The task is this directory (``task.toml`` declares it). Its files are run as a subprocess,
``python train.py`` from a copy of the directory, and import nothing of labswarm; this package
face only tells the rest of labswarm where the directory is.
"""

from pathlib import Path

TASK_DIR = Path(__file__).resolve().parent

__all__ = ["TASK_DIR"]
