"""The knob space of the landscape: which constants of trainer/train.py it varies, and how.

Shared by ``benchmarks/build_landscape.py`` (sampling real runs, fitting) and by the
landscape's evaluator (``evaluate.py``), so both encode a configuration the same way.
Only numpy and the standard library: the evaluator must start in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Scale = Literal["log", "linear", "int", "choice"]


@dataclass(frozen=True)
class Dim:
    """One knob: its name in train.py, its sampling range and how it is encoded for fitting."""

    name: str
    scale: Scale
    low: float = 0.0
    high: float = 0.0
    choices: tuple[float, ...] = ()
    default: float = 0.0

    def encode(self, value: float) -> float:
        """Map a value to the unit interval used by the surrogate (log knobs in log space).

        Values outside the sampled range map outside [0, 1]; the evaluator clips them there,
        so the surrogate never extrapolates beyond what real runs covered.
        """
        if self.scale == "log":
            value = max(float(value), 1e-12)
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        lo, hi = (
            (min(self.choices), max(self.choices))
            if self.scale == "choice"
            else (self.low, self.high)
        )
        return (float(value) - lo) / (hi - lo)


# Seven knobs of the built-in trainer's CPU configuration. Ranges are wide enough to hold
# real divergence (no soft-cap with large learning rates) and real slow regions (deep, wide
# models that take few steps in the budget).
DIMS: tuple[Dim, ...] = (
    Dim("MATRIX_LR", "log", 0.003, 1.0, default=0.04),
    Dim("EMBED_LR", "log", 0.01, 10.0, default=0.2),
    Dim("HEAD_LR", "log", 0.0005, 1.0, default=0.01),
    Dim("DEPTH_CPU", "int", 1, 6, default=4),
    Dim("WIDTH_CPU", "choice", choices=(64.0, 96.0, 128.0, 192.0, 256.0), default=128),
    Dim("WARMDOWN_RATIO", "linear", 0.0, 0.9, default=0.4),
    Dim("LOGIT_SOFTCAP", "choice", choices=(0.0, 5.0, 15.0, 30.0), default=15.0),
)
NAMES: tuple[str, ...] = tuple(d.name for d in DIMS)
DEFAULTS: dict[str, float] = {d.name: d.default for d in DIMS}


def encode(config: dict[str, float]) -> list[float]:
    """The surrogate's feature vector of a configuration (one entry per knob, in DIMS order)."""
    missing = [d.name for d in DIMS if d.name not in config]
    if missing:
        raise KeyError(f"configuration lacks knob(s): {', '.join(missing)}")
    return [d.encode(config[d.name]) for d in DIMS]
