"""Report figures: each is a PNG of the intended size, maps ignore latitude order, logs are read tolerantly."""

import json

import numpy as np
import pytest
from matplotlib.image import imread

from megageo.eval.plots import loss_series, plot_bench, plot_forecast_maps, plot_loss_curves, plot_metric_vs_lead
from megageo.eval.report import build_report

LAT = np.linspace(90, -90, 19)
LON = np.arange(36) * 10.0


def _height_field(phase: float) -> np.ndarray:
    lat, lon = np.meshgrid(np.deg2rad(LAT), np.deg2rad(LON), indexing="ij")
    return 5500 + 300 * np.cos(lat) ** 2 + 100 * np.sin(4 * lon + phase) * np.sin(2 * lat) ** 2


def test_maps_are_the_same_picture_for_either_latitude_order(tmp_path):
    forecast, truth = _height_field(0.3), _height_field(0.0)
    north_first = plot_forecast_maps(forecast, truth, LAT, LON, tmp_path / "north.png", "lead 24 h")
    south_first = plot_forecast_maps(forecast[::-1], truth[::-1], LAT[::-1], LON, tmp_path / "south.png", "lead 24 h")
    assert imread(north_first).shape == (552, 2040, 4)  # 17 × 4.6 inches at 120 dpi
    np.testing.assert_array_equal(imread(north_first), imread(south_first))


def test_metric_vs_lead_draws_every_forecast_of_a_report(tmp_path):
    truth = np.broadcast_to(_height_field(0.0), (2, 4, 1, *LAT.shape, *LON.shape))
    forecasts = {"gla": truth + 10.0, "persistence": truth + 20.0, "climatology": truth + 30.0}
    report = build_report(truth, forecasts, truth, LAT, [6, 12, 18, 24])
    for metric in ("lat_weighted_rmse", "acc"):
        assert imread(plot_metric_vs_lead(report, tmp_path / f"{metric}.png", metric)).shape == (540, 1080, 4)


def test_loss_series_separates_training_from_validation_records():
    records = [
        {"step": 0, "loss": 1.0, "lr": 0.1},
        {"step": 10, "loss": 0.5, "split": "train", "grad_norm": 3},
        {"step": 10, "split": "val", "val_loss": 0.7, "val_acc": 0.2},
        {"step": 20, "split": "val", "loss": 0.6},
        {"event": "checkpoint", "path": "x"},
        {"step": 30, "split": "val", "val_acc": 0.3},
    ]
    assert loss_series(records, "train") == ([0, 10], [1.0, 0.5])
    assert loss_series(records, "val") == ([10, 20], [0.7, 0.6])


def test_loss_curves_from_metrics_jsonl_with_blank_lines(tmp_path):
    lines = [json.dumps({"step": step, "loss": 1 / (step + 1)}) for step in range(0, 100, 10)]
    lines += ["", json.dumps({"step": 50, "split": "val", "val_loss": 0.05})]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    path = plot_loss_curves({"gla": tmp_path / "metrics.jsonl"}, tmp_path / "loss.png")
    assert imread(path).shape == (576, 960, 4)


@pytest.mark.parametrize("as_file", [False, True])
def test_bench_plot_accepts_records_or_their_json_file_including_out_of_memory(tmp_path, as_file):
    records = [
        {"mixer": mixer, "seq_len": length, "tokens_per_s": 1000.0 * index, "peak_mem_gb": 0.5 * index}
        for mixer in ("transformer", "gla") for index, length in enumerate([16, 128, 1024], start=1)
    ] + [{"mixer": "transformer", "seq_len": 16384, "status": "oom"}]
    if as_file:
        (tmp_path / "bench.json").write_text(json.dumps(records))
        records = tmp_path / "bench.json"
    assert imread(plot_bench(records, tmp_path / "bench.png")).shape == (552, 1440, 4)
    assert sorted(path.name for path in tmp_path.glob("*.png")) == ["bench.png"]
