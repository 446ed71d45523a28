"""A token model goes through the ordinary commands: `megageo train` on a token config, then `convert
consolidate`, `eval` and `forecast` on its checkpoint, each reading the patch layout from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multiprocess import run_ranks
from tiny_run import build_tiny_store, run_training, tiny_overrides

TOKENS = dict(model__tokens="patch", model__patch_size=4, model__frame_causal=True, model__head="residual")


def _train(store: Path, out: Path) -> list[float]:
    return run_training(tiny_overrides(store, out, train__steps=3, train__save_every=3, **TOKENS))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def run(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    (losses,) = run_ranks(_train, 1, store, out)
    assert len(losses) == 3 and all(0 < loss < 1 for loss in losses)
    return out


@pytest.mark.slow
def test_a_token_checkpoint_consolidates_evaluates_and_forecasts(store, run, tmp_path) -> None:
    import netCDF4
    from safetensors.torch import load_file

    from megageo.cli import main
    from megageo.data.store import Store

    assert main(["convert", "consolidate", str(run / "checkpoints"), str(tmp_path / "release.safetensors")]) == 0
    weights = load_file(tmp_path / "release.safetensors")
    assert weights["input.position"].shape == (8, 32)  # 2 × 4 patches of the 8 × 16 grid, hidden 32
    assert weights["head.proj.weight"].shape == (2 * 16, 32)  # T_out × 4 × 4 values per token
    assert main(["eval", str(tmp_path / "release.safetensors"), "--out", str(tmp_path / "eval"),
                 "--lead-hours", "12", "--samples", "64"]) == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["lead_hours"] == [6.0, 12.0]
    assert all(len(scores["lat_weighted_rmse"]) == 2 for scores in report["forecasts"].values())
    init = str(Store(store).dates(20)[0]).replace(" ", "T")
    assert main(["forecast", str(run), "--init", init, "--lead-hours", "24", "--out", str(tmp_path / "f.nc")]) == 0
    with netCDF4.Dataset(tmp_path / "f.nc") as dataset:
        assert dataset["hgt"].shape == (1, 4, 1, 8, 16)
        assert abs(float(dataset["hgt"][:].mean()) - 5500) < 1000
