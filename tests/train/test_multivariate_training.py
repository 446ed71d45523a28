"""A model over several variables: the config names its variables and levels, training reads exactly those
channels (normalised each by its own statistics), the checkpoint records which channels it was trained on, in
which units, and evaluation and forecasts follow them: scores per variable in its units, one CF variable each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multiprocess import run_ranks
from tiny_run import build_tiny_store, run_training, tiny_overrides


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"), variables=("hgt", "uwnd"))


def _train(store: Path, out: Path, variables: str) -> list[float]:
    return run_training(tiny_overrides(store, out, train__steps=2, train__save_every=2,
                                       data__variables=variables, data__levels="[500]"))


@pytest.fixture(scope="module")
def run(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    (losses,) = run_ranks(_train, 1, store, out, "[uwnd, hgt]")
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    return out


def test_checkpoint_records_the_channels_it_was_trained_on(store, run) -> None:
    from megageo.data.store import Store

    metadata = json.loads((run / "checkpoints" / "step00000002" / "megageo.json").read_text())
    assert metadata["frame_shape"] == [2, 8, 16]
    normalization = metadata["normalization"]
    assert normalization["variables"] == ["uwnd", "hgt"] and normalization["levels"] == [500.0, 500.0]
    assert normalization["units"] == ["m s-1", "m"]
    saved = Store(store)
    assert normalization["mean"] == pytest.approx([saved.mean[1], saved.mean[0]], rel=1e-6)
    assert normalization["std"] == pytest.approx([saved.std[1], saved.std[0]], rel=1e-6)


def test_eval_scores_each_variable_in_its_units_beside_its_persistence(store, run, tmp_path) -> None:
    from megageo.cli import main
    from megageo.data.store import Store

    assert main(["eval", str(run), "--out", str(tmp_path), "--lead-hours", "12", "--samples", "256"]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert list(report["variables"]) == ["uwnd", "hgt"]
    uwnd, hgt = report["variables"]["uwnd"], report["variables"]["hgt"]
    assert (uwnd["channels"], uwnd["units"], hgt["channels"], hgt["units"]) == (["uwnd500"], "m s-1", ["hgt500"], "m")
    # Persistence by hand from the store: every validation window (8 inputs, 2 leads), eq. 13 RMSE per lead.
    saved = Store(store)
    frames = saved.read(saved.train_end, len(saved)).astype("float64")
    starts = range(len(frames) - 10 + 1)
    for channel, scores in ((1, uwnd), (0, hgt)):
        for lead in range(2):
            errors = [frames[s + 8 + lead, channel] - frames[s + 7, channel] for s in starts]
            expected = float(np.sqrt(np.mean(np.square(errors))))
            assert scores["forecasts"]["persistence"]["rmse"][lead] == pytest.approx(expected, rel=1e-6)
    assert report["variables"]["uwnd"]["n_samples"] == len(starts) == 7
    markdown = (tmp_path / "eval.md").read_text()
    assert "## uwnd (uwnd500, m s-1)" in markdown and "| Lead (h) | Forecast | RMSE (m s-1) |" in markdown
    assert "## hgt (hgt500, m)" in markdown and "| Lead (h) | Forecast | RMSE (m) |" in markdown
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "acc_vs_lead_hgt.png", "acc_vs_lead_uwnd.png", "loss.png", "maps_hgt.png", "maps_uwnd.png",
        "rmse_vs_lead_hgt.png", "rmse_vs_lead_uwnd.png"]


def test_forecast_writes_one_cf_variable_per_variable(store, run, tmp_path) -> None:
    import netCDF4

    from megageo.cli import main
    from megageo.data.store import Store

    init = str(Store(store).dates(20)[0]).replace(" ", "T")
    assert main(["forecast", str(run), "--init", init, "--lead-hours", "12", "--out", str(tmp_path / "f.nc")]) == 0
    with netCDF4.Dataset(tmp_path / "f.nc") as dataset:
        assert (dataset["uwnd"].units, dataset["hgt"].units) == ("m s-1", "m")
        assert dataset["uwnd"].shape == dataset["hgt"].shape == (1, 2, 1, 8, 16)
        assert abs(float(dataset["hgt"][:].mean()) - 5500) < 1000 and abs(float(dataset["uwnd"][:].mean())) < 100
