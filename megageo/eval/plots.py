"""Figures for the evaluation report: the seed paper's Figs. 2–6 as PNGs.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas rather than through pyplot, so
plotting needs no display, touches no global backend state and is safe inside a training process.
Maps draw coastlines when cartopy is importable and plain latitude/longitude axes otherwise.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from megageo.io.atomic import atomic_path
from megageo.eval.baselines import BATCH_MEAN, CLIMATOLOGY, PERSISTENCE
from megageo.eval.horizon import USEFUL_ACC
from megageo.eval.metrics import lat_weighted_rmse

CONTOUR_INTERVALS = {"m": 60.0, "m s-1": 5.0, "K": 4.0}  # the customary 6 dam of Z500 charts, 5 m/s isotachs, 4 K
BASELINE_STYLES = {
    PERSISTENCE: {"color": "0.45", "linestyle": "--", "marker": "s"},
    CLIMATOLOGY: {"color": "black", "linestyle": ":", "marker": "D"},
    BATCH_MEAN: {"color": "0.7", "linestyle": ":", "marker": "d"},
}
METRIC_AXIS_LABELS = {"rmse": "RMSE, eq. 13 ({units})", "lat_weighted_rmse": "Latitude-weighted RMSE ({units})",
                      "acc": "ACC", "acc_batch_mean": "ACC (paper, batch mean)"}


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(figure)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    return Path(path)


def _cell_edges(centres: np.ndarray, limit: float | None = None) -> np.ndarray:
    """Edges halfway between grid centres, extended by half a cell at both ends (clipped to ±limit)."""
    middle = (centres[:-1] + centres[1:]) / 2
    edges = np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])
    return edges if limit is None else np.clip(edges, -limit, limit)


def _map_axes(figure: Figure, count: int) -> tuple[list[Axes], dict[str, Any]]:
    """``count`` side-by-side map panels and the keyword arguments their plot calls need."""
    try:
        import cartopy.crs as ccrs
    except ImportError:
        axes = list(figure.subplots(1, count, sharex=True, sharey=True))
        for ax in axes:
            ax.set_xticks(np.arange(0, 361, 60))
            ax.set_yticks(np.arange(-90, 91, 30))
            ax.set_xlabel("Longitude (°E)")
            ax.set_aspect("equal")
        axes[0].set_ylabel("Latitude (°N)")
        return axes, {}
    axes = list(figure.subplots(1, count, subplot_kw={"projection": ccrs.PlateCarree(central_longitude=180)}))
    for ax in axes:
        ax.coastlines(linewidth=0.6)
        ax.gridlines(draw_labels=False, linewidth=0.3, color="0.5")
    return axes, {"transform": ccrs.PlateCarree()}


def plot_forecast_maps(forecast: np.ndarray, truth: np.ndarray, lat: Any, lon: Any, path: str | os.PathLike,
                       title: str, units: str = "m", quantity: str = "Geopotential height") -> Path:
    """Forecast, truth and forecast − truth of one field ``[H, W]`` in ``units`` (the paper's Figs. 3–4).

    Forecast and truth share one colour scale with the customary contours (60 m for heights) so that troughs
    and ridges can be compared by eye; the error uses a diverging scale symmetric about 0, titled with its
    area-weighted RMSE.
    """
    interval = CONTOUR_INTERVALS[units]
    forecast, truth = np.asarray(forecast, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    lat_edges, lon_edges = _cell_edges(lat, limit=90.0), _cell_edges(lon)
    error = forecast - truth
    low, high = min(forecast.min(), truth.min()), max(forecast.max(), truth.max())
    levels = interval * np.arange(math.floor(low / interval), math.ceil(high / interval) + 1)
    largest_error = float(np.abs(error).max())

    figure = Figure(figsize=(17, 4.6), layout="constrained")
    axes, transform = _map_axes(figure, 3)
    heights = {"cmap": "viridis", "vmin": low, "vmax": high}
    panels = (
        (forecast, "Forecast", heights, f"{quantity} ({units})", levels),
        (truth, "Truth", heights, f"{quantity} ({units})", levels),
        (error, f"Forecast − truth (lat-weighted RMSE {lat_weighted_rmse(forecast, truth, lat):.3g} {units})",
         {"cmap": "RdBu_r", "vmin": -largest_error, "vmax": largest_error}, f"Forecast − truth ({units})", None),
    )
    for ax, (field, panel_title, colours, colourbar_label, contour_levels) in zip(axes, panels):
        mesh = ax.pcolormesh(lon_edges, lat_edges, field, shading="flat", **colours, **transform)
        if contour_levels is not None:
            ax.contour(lon, lat, field, levels=contour_levels, colors="black", linewidths=0.5, **transform)
        ax.set_title(panel_title)
        figure.colorbar(mesh, ax=ax, orientation="horizontal", shrink=0.8, label=colourbar_label)
    figure.suptitle(title)
    return _save(figure, path)


def plot_metric_vs_lead(report: Mapping[str, Any], path: str | os.PathLike,
                        metric: str = "lat_weighted_rmse") -> Path:
    """One line per forecast in an evaluation report against lead time (the paper's Fig. 5). ACC gets the 0.6 line
    of useful skill, where each forecast's skill horizon lies; leads beyond two days are labelled by the day."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    ax = figure.subplots()
    leads = report["lead_hours"]
    for name, scores in report["forecasts"].items():
        style = BASELINE_STYLES.get(name, {"marker": "o", "linewidth": 2})
        ax.plot(leads, scores[metric], label=name, **style)
    if metric == "acc":
        ax.axhline(USEFUL_ACC, color="firebrick", linewidth=1, label=f"useful skill (ACC {USEFUL_ACC:g})")
    ax.set_xticks(leads if leads[-1] <= 48 else [hours for hours in leads if hours % 24 == 0])
    ax.set_xlabel("Lead time (h)")
    ax.set_ylabel(METRIC_AXIS_LABELS[metric].format(units=report.get("units", "m")))
    ax.set_title(f"{', '.join(report.get('channels', ['hgt500']))} forecast skill by lead time "
                 f"({report['n_samples']} samples)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(figure, path)


def _read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def loss_series(records: Sequence[Mapping[str, Any]], split: str) -> tuple[list[float], list[float]]:
    """(steps, losses) of one split; records without a step or a loss (other record kinds) are skipped."""
    keys = ("loss",) if split == "train" else ("val_loss", "loss")
    steps, losses = [], []
    for record in records:
        if record.get("split", "train") != split or record.get("step") is None:
            continue
        loss = next((record[key] for key in keys if record.get(key) is not None), None)
        if loss is not None:
            steps.append(record["step"])
            losses.append(loss)
    return steps, losses


def plot_loss_curves(runs: Mapping[str, str | os.PathLike], path: str | os.PathLike) -> Path:
    """Training and validation loss against step for each run's ``metrics.jsonl`` (the paper's Fig. 2).

    Training records carry ``step`` and ``loss`` and no ``split`` (or ``"train"``); validation records
    carry ``split: "val"`` and ``val_loss`` (or ``loss``). Extra keys are ignored.
    """
    figure = Figure(figsize=(8, 4.8), layout="constrained")
    ax = figure.subplots()
    for index, (label, metrics_path) in enumerate(runs.items()):
        records = _read_jsonl(metrics_path)
        ax.plot(*loss_series(records, "train"), color=f"C{index}", alpha=0.45, linewidth=1, label=f"{label} train")
        ax.plot(*loss_series(records, "val"), color=f"C{index}", marker="o", markersize=3, linewidth=2,
                label=f"{label} validation")
    ax.set_yscale("log")
    ax.set_xlabel("Optimizer step")
    ax.set_ylabel("Loss")
    ax.set_title("Training and validation loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(figure, path)


def _sequence_length_label(length: float, _position: int) -> str:
    """16, 128, 1K, 16K, 128K: the paper's axis labels."""
    return f"{length / 1024:g}K" if length >= 1024 else f"{length:g}"


def plot_bench(records: Sequence[Mapping[str, Any]] | str | os.PathLike, path: str | os.PathLike) -> Path:
    """Training throughput and peak memory against sequence length, one line per mixer (the paper's Fig. 6).

    ``records`` is a list of ``{mixer, seq_len, tokens_per_s, peak_mem_gb}`` (or a JSON file holding one);
    lengths with ``status: "oom"`` are marked with a cross along the top of both panels.
    """
    if isinstance(records, (str, os.PathLike)):
        records = json.loads(Path(records).read_text())
    figure = Figure(figsize=(12, 4.6), layout="constrained")
    axes = figure.subplots(1, 2)
    panels = (("tokens_per_s", "Training throughput (tokens/s)"), ("peak_mem_gb", "Peak memory (GB)"))
    mixers = list(dict.fromkeys(record["mixer"] for record in records))
    for ax, (key, label) in zip(axes, panels):
        for index, mixer in enumerate(mixers):
            runs = sorted((r for r in records if r["mixer"] == mixer), key=lambda r: r["seq_len"])
            fitted = [r for r in runs if r.get("status") != "oom" and r.get(key) is not None]
            ax.plot([r["seq_len"] for r in fitted], [r[key] for r in fitted], color=f"C{index}", marker="o",
                    label=mixer)
            out_of_memory = [r["seq_len"] for r in runs if r.get("status") == "oom"]
            ax.plot(out_of_memory, [0.97] * len(out_of_memory), color=f"C{index}", marker="x", markersize=10,
                    linestyle="none", transform=ax.get_xaxis_transform(),
                    label=f"{mixer} out of memory" if out_of_memory else None)
        if any(record.get("status") == "oom" for record in records):
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + 0.1 * (high - low))  # a free band along the top for the crosses
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({record["seq_len"] for record in records}), minor=False)
        ax.xaxis.set_major_formatter(FuncFormatter(_sequence_length_label))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("Sequence length (frames)")
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0] + " vs sequence length")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    return _save(figure, path)
