"""`megageo eval --lead-hours`: every 6-hourly lead to the horizon scored by rollout on one tiny trained checkpoint,
persistence equal to a hand computation from the store's frames, and bad horizons refused in one line before any
output is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from multiprocess import run_ranks
from train.tiny_run import build_tiny_store, run_training, tiny_overrides

T_IN, T_OUT = 4, 2  # the tiny store's validation split holds 16 frames: 5 windows of 4 inputs + 48 h of targets


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 3-step tiny GLA (T_out = 2) with its checkpoint, on the 160-frame tiny store (train 144, val 16)."""
    folder = tmp_path_factory.mktemp("lead_hours")
    store = build_tiny_store(folder)
    out = folder / "run"
    run_ranks(run_training, 1, tiny_overrides(store, out, data__t_in=T_IN, data__t_out=T_OUT, train__steps=3,
                                              train__save_every=3))
    return out


def _persistence_by_hand(store: Path, leads: int) -> list[float]:
    """Latitude-weighted RMSE of 'the last input frame' against the frame `lead` steps later, for every validation
    window of T_IN + `leads` frames: sqrt(Σ_rows w·mean_lon(e²) / Σ w) per window, with w = sin(upper edge) −
    sin(lower edge) of each row's cell, then the mean over windows."""
    with h5py.File(store, "r") as h5:
        frames = h5["frames"][:, 0].astype(np.float64)
        lat, train_end = np.deg2rad(h5["lat"][:].astype(np.float64)), int(h5.attrs["train_end"])
    edges = np.concatenate([[np.pi / 2], (lat[:-1] + lat[1:]) / 2, [-np.pi / 2]])  # north to south
    area = np.sin(edges[:-1]) - np.sin(edges[1:])
    last_inputs = np.arange(train_end, len(frames) - T_IN - leads + 1) + T_IN - 1
    scores = []
    for lead in range(1, leads + 1):
        error = frames[last_inputs + lead] - frames[last_inputs]
        per_window = np.sqrt((area * (error**2).mean(axis=-1)).sum(axis=-1) / area.sum())
        scores.append(float(per_window.mean()))
    return scores


@pytest.mark.slow
def test_every_lead_to_the_horizon_is_scored_with_hand_computed_persistence(run, tmp_path):
    out = tmp_path / "eval"
    subprocess.run([sys.executable, "-m", "megageo", "eval", str(run), "--out", str(out), "--lead-hours", "48",
                    "--samples", "64"], check=True, timeout=600, capture_output=True)
    report = json.loads((out / "eval.json").read_text())
    assert report["lead_hours"] == [6.0, 12.0, 18.0, 24.0, 30.0, 36.0, 42.0, 48.0]
    assert report["n_samples"] == 5  # every validation window of 4 + 8 frames (starts 144..148)
    assert list(report["forecasts"]) == ["gla", "persistence", "climatology", "climatology (paper: batch mean)"]
    for name, scores in report["forecasts"].items():
        for metric in ("rmse", "lat_weighted_rmse", "acc", "acc_batch_mean"):
            assert len(scores[metric]) == 8 and all(np.isfinite(scores[metric])), (name, metric)
        assert ("skill_horizon_hours" in scores) == (name != "climatology (paper: batch mean)")
    # Normalising to float32 and back moves each height by about one float32 step (5e-4 m at 5500 m).
    expected = _persistence_by_hand(run.parent / "store.h5", 8)
    assert report["forecasts"]["persistence"]["lat_weighted_rmse"] == pytest.approx(expected, rel=1e-5)
    markdown = (out / "eval.md").read_text()
    assert "| Forecast | Useful-skill horizon (ACC ≥ 0.6) |" in markdown
    assert all((out / figure).stat().st_size > 10_000 for figure in ("rmse_vs_lead.png", "acc_vs_lead.png"))


@pytest.mark.slow
@pytest.mark.parametrize(("hours", "message"), [
    ("0", "lead 0 h is not a positive multiple of the 6 h time step"),
    ("-6", "lead -6 h is not a positive multiple of the 6 h time step"),
    ("10", "lead 10 h is not a positive multiple of the 6 h time step"),
    ("6", "--lead-hours 6 is shorter than the model's own forecast: T_out = 2 steps of 6 h = 12 h"),
    ("120", "the val split (frames 144..159) has no window of 4 + 20 frames"),
])
def test_bad_lead_hours_fail_in_one_line_before_any_output(run, tmp_path, capsys, hours, message):
    from megageo.cli import main

    out = tmp_path / "eval"
    assert main(["eval", str(run), "--out", str(out), f"--lead-hours={hours}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("megageo: error: ") and error.rstrip().endswith(message)
    assert not out.exists()
