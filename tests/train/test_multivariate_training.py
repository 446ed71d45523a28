"""A model over several variables: the config names its variables and levels, training reads exactly those
channels (normalised each by its own statistics), and the checkpoint records which channels it was trained on, in
which units, so evaluation and forecasts can follow them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multiprocess import run_ranks
from tiny_run import build_tiny_store, run_training, tiny_overrides


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"), variables=("hgt", "uwnd"))


def _train(store: Path, out: Path, variables: str) -> list[float]:
    return run_training(tiny_overrides(store, out, train__steps=2, train__save_every=2,
                                       data__variables=variables, data__levels="[500]"))


def test_checkpoint_records_the_channels_it_was_trained_on(store, tmp_path) -> None:
    from megageo.data.store import Store

    (losses,) = run_ranks(_train, 1, store, tmp_path, "[uwnd, hgt]")
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    metadata = json.loads((tmp_path / "checkpoints" / "step00000002" / "megageo.json").read_text())
    assert metadata["frame_shape"] == [2, 8, 16]
    normalization = metadata["normalization"]
    assert normalization["variables"] == ["uwnd", "hgt"] and normalization["levels"] == [500.0, 500.0]
    assert normalization["units"] == ["m s-1", "m"]
    saved = Store(store)
    assert normalization["mean"] == pytest.approx([saved.mean[1], saved.mean[0]], rel=1e-6)
    assert normalization["std"] == pytest.approx([saved.std[1], saved.std[0]], rel=1e-6)
