"""Stop cleanly when asked: SIGTERM (a PBS job reaching its walltime) makes the loop save and leave.

The signal may reach ranks at different steps, so the decision is taken collectively after every step: if any
rank was signalled, all of them stop after the same step and write one consistent checkpoint.
"""

from __future__ import annotations

import signal
from types import FrameType

import torch
import torch.distributed as dist

from megageo.parallel import groups


class Preemption:
    def __init__(self) -> None:
        self.signalled = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True

    def agreed(self) -> bool:
        """Whether any rank has been signalled (a collective: every rank calls it after every step)."""
        flag = torch.tensor([int(self.signalled)], device=groups.device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)
