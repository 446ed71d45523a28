"""The README's main job end to end at toy size, plus a forecast file from the model it trained."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    subprocess.run([sys.executable, "-m", "megageo", "demo", "--out", str(out), "--days", "16", "--steps", "6",
                    "--train-fraction", "0.5", "--bench-lengths", "16"], check=True, timeout=1200)
    return out


@pytest.mark.slow
def test_report_states_numbers_from_its_own_evaluations(demo: Path) -> None:
    report = (demo / "report.md").read_text()
    gla = json.loads((demo / "eval" / "gla" / "eval.json").read_text())
    transformer = json.loads((demo / "eval" / "transformer" / "eval.json").read_text())
    assert gla["lead_hours"] == [6.0 * step for step in range(1, 21)]  # five days by rollout
    model_rmse = gla["forecasts"]["gla"]["lat_weighted_rmse"][3]
    persistence_rmse = gla["forecasts"]["persistence"]["lat_weighted_rmse"][3]
    transformer_rmse = transformer["forecasts"]["transformer"]["lat_weighted_rmse"][3]
    assert f"RMSE {model_rmse:.1f} m against {persistence_rmse:.1f} m" in report
    assert f"reaches {transformer_rmse:.1f} m" in report
    assert f"{model_rmse / persistence_rmse:.2f}× persistence" in report
    scores = {name: gla["forecasts"][name] for name in ("gla", "persistence")}
    for metric, key, better in (("RMSE at or below", "lat_weighted_rmse", float.__le__), ("ACC above", "acc", float.__gt__)):
        won = [f"{hours:g} h" for hours, m, p in zip(gla["lead_hours"][:4], scores["gla"][key],
                                                     scores["persistence"][key]) if better(m, p)]
        beaten = "every lead" if len(won) == 4 else f"only {', '.join(won)}" if won else "no lead"
        assert f"Its {metric} persistence at {beaten} (6 h to 24 h)." in report
    horizon = {}
    for name, evaluation in (("gla", gla), ("transformer", transformer), ("persistence", gla)):
        acc = evaluation["forecasts"][name]["acc"]
        skilful = next((lead for lead, value in enumerate(acc) if value < 0.6), len(acc))  # leads before the first drop
        horizon[name] = gla["lead_hours"][skilful - 1] if skilful else None
        assert evaluation["forecasts"][name]["skill_horizon_hours"] == horizon[name], name
    words = {name: "none (ACC < 0.6 at 6 h)" if hours is None else f"≥ {hours:g} h" if hours == 120 else f"{hours:g} h"
             for name, hours in horizon.items()}
    assert (f"Rolled out to 120 h, useful skill (ACC ≥ 0.6) lasts {words['gla']} for the tiny GLA, "
            f"{words['transformer']} for the tiny Transformer and {words['persistence']} for persistence.") in report
    assert gla["forecasts"]["persistence"] == transformer["forecasts"]["persistence"]  # same samples for both
    for figure in re.findall(r"!\[[^]]*\]\(([^)]+)\)", report):
        assert (demo / figure).stat().st_size > 10_000, figure


@pytest.mark.slow
def test_bench_rows_cover_both_mixers(demo: Path) -> None:
    rows = json.loads((demo / "bench" / "bench.json").read_text())
    assert [(row["mixer"], row["seq_len"], row["status"]) for row in rows] == [("gla", 16, "ok"), ("transformer", 16, "ok")]
    assert all(row["tokens_per_s"] > 0 and row["tflops"] > 0 and row["peak_mem_gb"] > 0 for row in rows)


@pytest.mark.slow
def test_forecast_from_the_trained_run_is_cf_netcdf(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "forecast.nc"
    subprocess.run([sys.executable, "-m", "megageo", "forecast", str(demo / "runs" / "gla"), "--init",
                    "1979-01-10T00", "--lead-hours", "30", "--out", str(out)], check=True, timeout=600)
    with netCDF4.Dataset(out) as nc:
        assert nc.Conventions.startswith("CF-")
        hgt = nc["hgt"]
        assert hgt.dimensions == ("time", "lead_time", "level", "lat", "lon")
        assert hgt.shape == (1, 5, 1, 73, 144)
        assert (hgt.standard_name, hgt.units) == ("geopotential_height", "m")
        np.testing.assert_array_equal(nc["lead_time"][:], [6, 12, 18, 24, 30])
        assert nc["lat"][0] == 90 and nc["lat"][-1] == -90
        valid = netCDF4.num2date(nc["valid_time"][0, -1], nc["valid_time"].units)
        assert (valid.year, valid.month, valid.day, valid.hour) == (1979, 1, 11, 6)
        assert 4000 < float(np.mean(hgt[:])) < 7000
