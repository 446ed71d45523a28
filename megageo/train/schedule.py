"""Learning rate: linear warmup to the peak, then cosine decay to `min_lr` at the last step (seed paper, Table 3).

Written as a LambdaLR factor so DeepSpeed drives it and saves its position (the step) with the checkpoint;
the shape itself always comes from the config, so a resumed run follows the schedule it is configured with.
Optimizer step `s` (0-based) uses `value(s)`: warmup reaches the peak at its last step, and the decay ends at
`min_lr` on step `steps - 1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WarmupCosine:
    lr: float
    min_lr: float
    warmup_steps: int
    steps: int

    def value(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        decay_steps = max(1, self.steps - self.warmup_steps)
        progress = min(1.0, (step + 1 - self.warmup_steps) / decay_steps)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def factor(self, step: int) -> float:
        return self.value(step) / self.lr if self.lr else 0.0


def warmup_cosine(optimizer: torch.optim.Optimizer, schedule: WarmupCosine) -> torch.optim.lr_scheduler.LambdaLR:
    """A plain function as the factor: LambdaLR then checkpoints only its step, not the schedule's settings."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule.factor(step))
