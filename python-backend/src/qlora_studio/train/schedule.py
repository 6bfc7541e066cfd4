"""Learning-rate schedules as plain functions of the step, for torch's LambdaLR.

Written out here (not taken from transformers) so the schedule a run follows is visible in one
place and is a pure function of (step, total, warmup): a resumed run recomputes it exactly.
"""
from __future__ import annotations

import math
from typing import Callable


def warmup_steps_for(total_steps: int, warmup_steps: int | None, warmup_ratio: float) -> int:
    """Warmup length: explicit steps win over the ratio; never the whole run."""
    n = warmup_steps if warmup_steps is not None else math.ceil(total_steps * warmup_ratio)
    return max(0, min(int(n), max(0, total_steps - 1)))


def lr_lambda(kind: str, total_steps: int, warmup: int) -> Callable[[int], float]:
    """The multiplier of the peak lr at optimizer step `step` (0-based): linear warmup, then kind.

    kind: "cosine" (to 0 at the last step), "linear" (to 0) or "constant".
    """
    if kind not in ("cosine", "linear", "constant"):
        raise ValueError(f"unknown scheduler {kind!r}; use cosine, linear or constant")
    decay_steps = max(1, total_steps - warmup)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / decay_steps)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if kind == "linear":
            return 1.0 - progress
        return 1.0

    return f
