"""The poly learning-rate schedule of DeepLab and SAL-Net, over the Trainer's number of steps."""

from __future__ import annotations

import math
from typing import Any


def poly_factor(step: int, max_steps: int, power: float = 0.9) -> float:
    """The poly learning-rate factor ``(1 - step / max_steps) ** power``, 0 from ``max_steps`` on."""
    if max_steps < 1:
        raise ValueError(f"max_steps: expected a positive number of steps, got {max_steps}")
    return max(0.0, 1.0 - step / max_steps) ** power


def total_steps(trainer: Any) -> int:
    """The steps a schedule spans: the trainer's ``max_steps``, else its estimate from the epochs."""
    steps: float = trainer.max_steps
    if steps is None or steps < 1:
        steps = trainer.estimated_stepping_batches
    if not math.isfinite(steps) or steps < 1:
        raise ValueError("trainer: set max_steps or max_epochs, the poly schedule needs a number of steps")
    return int(steps)
