"""The per-lead table: same numbers in JSON and markdown, one row per lead and forecast."""

import json

import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.eval.report import build_report, report_markdown, write_report

LAT = [90, 0, -90]


@pytest.fixture
def report() -> dict:
    # Uniform errors make every RMSE the error itself (weights have mean 1): 10 m and 20 m at the two leads.
    rng = np.random.default_rng(1)
    truth = 5500 + 50 * rng.standard_normal((4, 2, 1, 3, 2))
    offsets = np.array([10.0, 20.0]).reshape(1, 2, 1, 1, 1)
    forecasts = {"gla": truth + offsets, "persistence": truth - 2 * offsets}
    return build_report(truth, forecasts, truth.mean(axis=0), LAT, [6, 12], run="demo")


def test_report_holds_every_metric_per_lead_for_every_forecast(report):
    assert report["lead_hours"] == [6.0, 12.0]
    assert report["n_samples"] == 4
    assert report["context"] == {"run": "demo"}
    assert report["forecasts"]["gla"]["rmse"] == [pytest.approx(10.0, rel=1e-12), pytest.approx(20.0, rel=1e-12)]
    assert report["forecasts"]["persistence"]["lat_weighted_rmse"] == [pytest.approx(20.0, rel=1e-12),
                                                                      pytest.approx(40.0, rel=1e-12)]


def test_markdown_has_one_row_per_lead_and_forecast(report):
    rows = [line for line in report_markdown(report).splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| Lead (h) | Forecast | RMSE (m) | Lat-weighted RMSE (m) | ACC | ACC (paper, batch mean) |"
    assert [row.split(" | ")[:4] for row in rows[1:]] == [
        ["| 6", "gla", "10.0", "10.0"],
        ["| 6", "persistence", "20.0", "20.0"],
        ["| 12", "gla", "20.0", "20.0"],
        ["| 12", "persistence", "40.0", "40.0"],
    ]


def test_write_report_round_trips_the_numbers_through_json(report, tmp_path):
    json_path, markdown_path = write_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text()) == report
    assert markdown_path.read_text() == report_markdown(report)


def test_lead_hours_must_match_the_forecast_steps():
    truth = np.zeros((1, 2, 1, 3, 2))
    with pytest.raises(MegageoError):
        build_report(truth, {}, truth, LAT, [6])
