"""Tiny training runs for the conversion tests: the store and config of `tests/train`, a few steps."""

from __future__ import annotations

from pathlib import Path

from multiprocess import run_ranks
from train.tiny_run import run_training, tiny_overrides

TP2 = dict(parallel__tensor_parallel=2, parallel__zero_stage=1)
STEPS, SAVED_AT = 8, 4


def _train(store: Path, out: Path, settings: dict, stop_at: int | None, resume: bool) -> list[float]:
    return run_training(tiny_overrides(store, out, **settings), resume=resume, stop_at=stop_at)


def train(ranks: int, store: Path, out: Path, stop_at: int | None = None, resume: bool = False,
          **settings) -> list[float]:
    """Rank 0's per-step losses of `megageo.train.loop.train` on `ranks` gloo processes."""
    return run_ranks(_train, ranks, store, out, settings, stop_at, resume)[0]
