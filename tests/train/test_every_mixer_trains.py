"""Every mixer trains through the engine at TP=1 and TP=2 (sequence parallel off and on), and the TP=2 runs
reproduce the single-process per-step losses (to 1e-5 relative) — the optimizer step included, not only the
forward and backward that tests/model checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiprocess import run_ranks
from tiny_run import MIXERS, build_tiny_store, run_training, tiny_overrides

TOLERANCE = 1e-5
TP2_LAYOUTS = {"tp2": {"parallel__tensor_parallel": 2},
               "tp2-sp": {"parallel__tensor_parallel": 2, "parallel__sequence_parallel": True}}


def _train_all(store: Path, out: Path, layouts: dict[str, dict]) -> dict[tuple[str, str], list[float]]:
    losses = {}
    for mixer, spec in MIXERS.items():
        for layout, settings in layouts.items():
            overrides = tiny_overrides(store, out / f"{mixer}-{layout}", train__steps=3, model__mixer=spec, **settings)
            losses[mixer, layout] = run_training(overrides)
    return losses


@pytest.fixture(scope="module")
def losses(tmp_path_factory) -> dict[tuple[str, str], list[float]]:
    store = build_tiny_store(tmp_path_factory.mktemp("store"))
    (single,) = run_ranks(_train_all, 1, store, tmp_path_factory.mktemp("single"), {"tp1": {}})
    tp2, _ = run_ranks(_train_all, 2, store, tmp_path_factory.mktemp("tp2"), TP2_LAYOUTS)
    return {**single, **tp2}


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(TP2_LAYOUTS))
@pytest.mark.parametrize("mixer", list(MIXERS))
def test_tp2_training_matches_one_process(losses, mixer: str, layout: str) -> None:
    reference = losses[mixer, "tp1"]
    assert len(reference) == 3 and len(set(reference)) == 3, f"{mixer}: expected 3 distinct step losses, {reference}"
    errors = [abs(a - b) / b for a, b in zip(losses[mixer, layout], reference, strict=True)]
    assert max(errors) <= TOLERANCE, f"{mixer} {layout}: per-step losses differ by {max(errors):.2e}"
