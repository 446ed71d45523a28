"""Per-lead skill of several forecasts of the same samples and each one's useful-skill horizon, as JSON (all
numbers) and markdown tables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from megageo.errors import MegageoError
from megageo.eval.baselines import BATCH_MEAN, baseline_forecasts
from megageo.eval.climatology import Climatology
from megageo.eval.horizon import DEFINITION as HORIZON_DEFINITION
from megageo.eval.horizon import USEFUL_ACC, describe_horizon, skill_horizon
from megageo.eval.metrics import METRIC_NAMES, metrics_per_lead
from megageo.io.atomic import write_text

COLUMNS = {
    "rmse": "RMSE ({units})",
    "lat_weighted_rmse": "Lat-weighted RMSE ({units})",
    "acc": "ACC",
    "acc_batch_mean": "ACC (paper, batch mean)",
}


def column(metric: str, units: str) -> tuple[str, str]:
    """(title, number format) of a metric's column: errors in the variable's units (metres to 0.1, winds and
    temperatures to 0.01), correlations to 0.001."""
    if metric.startswith("acc"):
        return COLUMNS[metric], "{:.3f}"
    return COLUMNS[metric].format(units=units), "{:.1f}" if units == "m" else "{:.2f}"
DEFINITIONS = {
    "rmse": "Seed paper eq. 13: sqrt of the mean squared error over all grid points of all samples, unweighted.",
    "lat_weighted_rmse": "WeatherBench 2: sqrt of the cell-area-weighted mean squared error per sample, "
                         "averaged over samples.",
    "acc": "WeatherBench 2: cell-area-weighted anomaly correlation per sample, anomalies against the "
           "day-of-year x hour-of-day training climatology, averaged over samples; 0 for a forecast "
           "without anomalies.",
    "acc_batch_mean": "Seed paper's variant: anomalies against the batch-mean truth field, one unweighted "
                      "correlation over the whole batch; for comparison with the paper only.",
    "skill_horizon_hours": f"{HORIZON_DEFINITION} Not given for the paper's batch-mean climatology: it is built "
                           "from the verifying fields themselves, so its ACC measures how alike the samples are, "
                           "not skill.",
}


def build_report(truth: np.ndarray, forecasts: Mapping[str, np.ndarray], climatology: np.ndarray, lat: Any,
                 lead_hours: Sequence[float], channels: Sequence[str] = ("hgt500",), units: str = "m",
                 **context: Any) -> dict[str, Any]:
    """Score every forecast ``[N, T_out, C, H, W]`` of one variable (its ``channels``, in ``units``) against
    ``truth`` at each lead, and give each real
    forecast its useful-skill horizon (``skill_horizon_hours``, null when it has none), kept with its scores so
    that reports of the same samples merge by merging their ``forecasts``.

    ``climatology`` is the day-of-year/hour-of-day field at each valid time (the ACC reference);
    ``context`` (run name, checkpoint, split, ...) is stored alongside the numbers.
    """
    if len(lead_hours) != truth.shape[1]:
        raise MegageoError(f"{len(lead_hours)} lead times given for {truth.shape[1]} forecast steps")
    leads = [float(hours) for hours in lead_hours]
    scores = {name: metrics_per_lead(forecast, truth, climatology, lat) for name, forecast in forecasts.items()}
    if len(channels) != truth.shape[2]:
        raise MegageoError(f"{len(channels)} channel names given for {truth.shape[2]} channels")
    return {
        "lead_hours": leads,
        "channels": list(channels),
        "units": units,
        "n_samples": int(truth.shape[0]),
        "context": dict(context),
        "definitions": DEFINITIONS,
        "forecasts": {name: metrics if name == BATCH_MEAN else
                      {**metrics, "skill_horizon_hours": skill_horizon(metrics["acc"], leads)}
                      for name, metrics in scores.items()},
    }


def evaluate_against_baselines(inputs: np.ndarray, truth: np.ndarray, model_forecasts: Mapping[str, np.ndarray],
                               climatology: Climatology, valid_times: Any, lat: Any, lead_hours: Sequence[float],
                               **context: Any) -> dict[str, Any]:
    """Report for models and the three baselines on the same samples of one variable, in its units.

    ``inputs`` ``[N, T_in, C, H, W]`` feed persistence, ``valid_times`` ``[N, T_out]`` select the
    climatology. Eq. 13 RMSE and the paper's ACC depend on which samples form the batch, so, as in the
    paper, evaluate a fixed set of samples (it used 256) in one call.
    """
    forecasts = {**model_forecasts, **baseline_forecasts(inputs, truth, climatology, valid_times)}
    return build_report(truth, forecasts, climatology.lookup(valid_times), lat, lead_hours, **context)


def report_markdown(report: Mapping[str, Any]) -> str:
    """One row per lead time and forecast, each forecast's useful-skill horizon, then the definitions."""
    units = report.get("units", "m")
    titles = [column(metric, units)[0] for metric in COLUMNS]
    lines = [
        f"Scores over {report['n_samples']} samples.",
        "",
        "| Lead (h) | Forecast | " + " | ".join(titles) + " |",
        "|---:|:---|" + "---:|" * len(titles),
    ]
    for lead, hours in enumerate(report["lead_hours"]):
        for name, scores in report["forecasts"].items():
            cells = [column(metric, units)[1].format(scores[metric][lead]) for metric in COLUMNS]
            lines.append(f"| {hours:g} | {name} | " + " | ".join(cells) + " |")
    lines += ["", f"| Forecast | Useful-skill horizon (ACC ≥ {USEFUL_ACC:g}) |", "|:---|---:|"]
    lines.extend(f"| {name} | {describe_horizon(scores['skill_horizon_hours'], report['lead_hours'])} |"
                 for name, scores in report["forecasts"].items() if "skill_horizon_hours" in scores)
    lines.append("")
    lines.extend(f"- **{column(metric, units)[0]}**: {report['definitions'][metric]}" for metric in METRIC_NAMES)
    lines.append(f"- **Useful-skill horizon**: {report['definitions']['skill_horizon_hours']}")
    return "\n".join(lines) + "\n"


def variables_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """One section per variable, each table in the variable's units."""
    return "\n".join(f"## {name} ({', '.join(report['channels'])}, {report['units']})\n\n{report_markdown(report)}"
                     for name, report in reports.items())


def write_report(report: Mapping[str, Any], directory: str | os.PathLike, stem: str = "eval") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``directory``; returns their paths. A report of several
    variables (``{"variables": {name: report}}``) gets one markdown section per variable."""
    json_path, markdown_path = Path(directory) / f"{stem}.json", Path(directory) / f"{stem}.md"
    markdown = variables_markdown(report["variables"]) if "variables" in report else report_markdown(report)
    for path, text in ((json_path, json.dumps(report, indent=2, allow_nan=False) + "\n"), (markdown_path, markdown)):
        write_text(path, text)
    return json_path, markdown_path
