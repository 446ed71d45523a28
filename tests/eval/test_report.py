"""The per-lead table and the useful-skill horizons: same numbers in JSON and markdown, one row per lead and
forecast."""

import json

import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.eval.baselines import BATCH_MEAN, CLIMATOLOGY, PERSISTENCE
from megageo.eval.climatology import Climatology
from megageo.eval.report import build_report, evaluate_against_baselines, report_markdown, write_report
from megageo.eval.times import valid_times

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
    lead_table = report_markdown(report).split("\n\n")[1]
    rows = [line for line in lead_table.splitlines() if "---" not in line]
    assert rows[0] == "| Lead (h) | Forecast | RMSE (m) | Lat-weighted RMSE (m) | ACC | ACC (paper, batch mean) |"
    assert [row.split(" | ")[:4] for row in rows[1:]] == [
        ["| 6", "gla", "10.0", "10.0"],
        ["| 6", "persistence", "20.0", "20.0"],
        ["| 12", "gla", "20.0", "20.0"],
        ["| 12", "persistence", "40.0", "40.0"],
    ]


def test_each_forecast_carries_its_skill_horizon_in_json_and_markdown():
    # Correlated anomalies at 6 h and 12 h, an anti-correlated one at 18 h: ACC 1, 1, -1 for the model; the
    # climatology itself has no anomaly (ACC 0 everywhere) and so no horizon.
    truth = np.zeros((1, 3, 1, 3, 2))
    truth[0, :, 0, :, 0] = 10.0
    model = truth * np.array([1.0, 2.0, -1.0]).reshape(1, 3, 1, 1, 1)
    perfect = build_report(truth, {"model": model, "copy": truth.copy(), "climatology": np.zeros_like(truth)},
                           np.zeros_like(truth), LAT, [6, 12, 18])
    assert {name: scores["skill_horizon_hours"] for name, scores in perfect["forecasts"].items()} == {
        "model": 12.0, "copy": 18.0, "climatology": None}
    rows = report_markdown(perfect).splitlines()
    start = rows.index("| Forecast | Useful-skill horizon (ACC ≥ 0.6) |")
    assert rows[start + 2:start + 5] == ["| model | 12 h |", "| copy | ≥ 18 h |",
                                         "| climatology | none (ACC < 0.6 at 6 h) |"]


def test_write_report_round_trips_the_numbers_through_json(report, tmp_path):
    json_path, markdown_path = write_report(report, tmp_path / "out")
    assert json.loads(json_path.read_text()) == report
    assert markdown_path.read_text() == report_markdown(report)


def test_lead_hours_must_match_the_forecast_steps():
    truth = np.zeros((1, 2, 1, 3, 2))
    with pytest.raises(MegageoError):
        build_report(truth, {}, truth, LAT, [6])


def test_evaluation_scores_models_next_to_all_baselines():
    # A climatology that is 5000 m everywhere; the truth is 5000 m plus 10 m times the sample number.
    train_times = np.datetime64("2001-01-01T00", "h") + np.arange(4 * 366) * np.timedelta64(6, "h")
    climatology = Climatology.fit(np.full((len(train_times), 1, 3, 2), 5000.0), train_times)
    truth = 5000 + 10 * np.arange(1.0, 4.0).reshape(3, 1, 1, 1, 1) * np.ones((3, 2, 1, 3, 2))
    inputs = np.concatenate([np.zeros_like(truth), truth[:, :1]], axis=1)
    init = np.datetime64("2002-06-01T00", "h") + np.arange(3) * np.timedelta64(6, "h")
    report = evaluate_against_baselines(inputs, truth, {"model": truth + 1}, climatology,
                                        valid_times(init, [6, 12]), LAT, [6, 12])
    scores = report["forecasts"]
    assert list(scores) == ["model", PERSISTENCE, CLIMATOLOGY, BATCH_MEAN]
    assert scores[PERSISTENCE]["rmse"] == [0.0, 0.0]  # the truth does not change with lead
    assert scores[CLIMATOLOGY]["lat_weighted_rmse"] == [pytest.approx(20.0, rel=1e-12)] * 2  # mean of 10, 20, 30
    assert scores[CLIMATOLOGY]["acc"] == [0.0, 0.0]
    assert scores["model"]["acc"] == [pytest.approx(1.0, rel=1e-12)] * 2
    # A horizon for every real forecast; the batch mean is made of the verifying fields, so it gets none.
    assert {name: s.get("skill_horizon_hours", "absent") for name, s in scores.items()} == {
        "model": 12.0, PERSISTENCE: 12.0, CLIMATOLOGY: None, BATCH_MEAN: "absent"}
