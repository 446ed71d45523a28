"""Evaluate a trained forecaster on the validation split next to persistence and climatology (`megageo eval`).

The model runs on one CPU process from a release checkpoint (or a DeepSpeed checkpoint consolidated in memory).
Forecasts beyond the model's `T_out` (to `--lead-hours`) are autoregressive rollouts, scored on validation windows
long enough to verify every lead; every score is in the variable's units, at 6-hourly leads. A model of several
variables is scored variable by variable (each over its levels), next to the same baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megageo.data.dataset import WindowDataset
from megageo.data.store import Store
from megageo.data.variables import VARIABLES
from megageo.errors import MegageoError
from megageo.eval.climatology import Climatology
from megageo.model.rollout import leads_for_hours, rollout


@dataclass
class Forecasts:
    """Everything in physical units: inputs [N, T_in, C, H, W], truth and forecast [N, leads, C, H, W]."""

    inputs: np.ndarray
    truth: np.ndarray
    forecast: np.ndarray
    valid_times: np.ndarray
    lead_hours: list[float]


def normalised_dataset(store: str | Path, stats: dict[str, Any], split: str, t_in: int, leads: int) -> WindowDataset:
    """Windows of the checkpoint's channels, normalised with the *checkpoint's* statistics, so a model sees inputs
    chosen and scaled as in training (a store that lacks one of them is one line). Checkpoints written before
    variables existed hold geopotential height."""
    variables = stats.get("variables", ["hgt"] * len(stats["levels"]))
    dataset = WindowDataset(store, split=split, t_in=t_in, t_out=leads, variables=list(dict.fromkeys(variables)),
                            levels=list(dict.fromkeys(stats["levels"])),
                            statistics=(np.asarray(stats["mean"]), np.asarray(stats["std"])))
    chosen = list(zip(dataset.store.variable[dataset.channels], dataset.store.level[dataset.channels]))
    if chosen != list(zip(variables, stats["levels"])):
        raise MegageoError(f"{store}: channels {chosen} differ from the checkpoint's "
                           f"{list(zip(variables, stats['levels']))}")
    return dataset


def scored_leads(lead_hours: float | None, t_out: int, step_hours: float) -> int:
    """Frames to score: the model's own T_out, or every step to `lead_hours` by rollout. A horizon shorter than
    T_out is refused rather than truncated: it would silently drop leads the model was trained to forecast."""
    if lead_hours is None:
        return t_out
    leads = leads_for_hours(lead_hours, step_hours)
    if leads < t_out:
        raise MegageoError(f"--lead-hours {lead_hours:g} is shorter than the model's own forecast: T_out = {t_out} "
                           f"steps of {step_hours:g} h = {t_out * step_hours:g} h")
    return leads


def evenly_spaced(count: int, limit: int) -> np.ndarray:
    """A fixed sample set: `limit` windows spread over the split (all of them when there are fewer)."""
    return np.unique(np.linspace(0, count - 1, num=min(count, limit)).round().astype(int))


def predict(step_fn: Callable[[torch.Tensor], torch.Tensor], dataset: WindowDataset, indices: np.ndarray,
            batch_size: int, progress: Callable[[int], None] | None = None) -> Forecasts:
    leads = dataset.t_out
    inputs, truth, forecast, times = [], [], [], []
    for start in range(0, len(indices), batch_size):
        batch = indices[start:start + batch_size]
        x, y = (torch.stack(parts) for parts in zip(*(dataset[int(i)] for i in batch)))
        with torch.no_grad():
            prediction = rollout(step_fn, x, leads)
        inputs.append(dataset.denormalize(x).numpy())
        truth.append(dataset.denormalize(y).numpy())
        forecast.append(dataset.denormalize(prediction).numpy())
        times.extend(dataset.valid_times(int(i)) for i in batch)
        if progress is not None:
            progress(len(batch))
    step = dataset.step_hours
    return Forecasts(np.concatenate(inputs), np.concatenate(truth), np.concatenate(forecast), np.asarray(times),
                     [step * (lead + 1) for lead in range(leads)])


class StoreFrames:
    """Some channels of a store's leading frames, read slice by slice as `Climatology.fit` asks for them, so a
    multi-decade training split never has to fit in memory."""

    def __init__(self, dataset: WindowDataset, stop: int):
        self.store, self.channels = dataset.store, dataset.channels
        _, _, height, width = self.store.shape
        self.shape = (stop, len(self.channels), height, width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.store.read(rows.start, rows.stop)[:, self.channels]


def training_climatology(dataset: WindowDataset) -> Climatology:
    """Day-of-year × hour-of-day climatology of the training frames only (the ACC reference and a baseline)."""
    train_end = dataset.store.train_end
    return Climatology.fit(StoreFrames(dataset, train_end), dataset.store.dates(np.arange(train_end)))


def variable_channels(dataset: WindowDataset) -> dict[str, list[int]]:
    """Each variable's positions among the dataset's channels, in order."""
    groups: dict[str, list[int]] = {}
    for position, name in enumerate(dataset.store.variable[dataset.channels]):
        groups.setdefault(str(name), []).append(position)
    return groups


def model_step(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    model.eval()
    return lambda frames: model(frames).float()


def evaluate_checkpoint(checkpoint: str | Path, out_dir: Path, store: str | None = None, max_samples: int = 256,
                        batch_size: int = 32, lead_hours: float | None = None, map_sample: int = 0,
                        name: str | None = None) -> dict[str, Any]:
    """Score a checkpoint on the validation split at every step to `lead_hours` (default: its T_out) and write
    eval.json, eval.md and the figures into `out_dir`. Bad leads or a split too short for them fail before the
    model is built or anything is written."""
    from tqdm import tqdm

    from megageo.convert.release import build_model, load_release
    from megageo.eval.plots import plot_forecast_maps, plot_loss_curves, plot_metric_vs_lead
    from megageo.eval.report import evaluate_against_baselines, write_report

    release = load_release(checkpoint)
    config = release.config
    store = store or config.data.store
    leads = scored_leads(lead_hours, config.data.t_out, Store(store).regular_step())
    dataset = normalised_dataset(store, release.stats, "val", config.data.t_in, leads)
    indices = evenly_spaced(len(dataset), max_samples)
    if not 0 <= map_sample < len(indices):
        raise MegageoError(f"--map-sample {map_sample} is outside the {len(indices)} evaluated samples")
    model = build_model(release)
    label = name or config.model.mixer.type
    with tqdm(total=len(indices), desc=f"eval {label}", unit="sample") as bar:
        forecasts = predict(model_step(model), dataset, indices, batch_size, progress=bar.update)
    climatology = training_climatology(dataset)
    names, units = dataset.store.channel_names(), dataset.store.units
    reports = {
        variable: evaluate_against_baselines(
            forecasts.inputs[:, :, index], forecasts.truth[:, :, index], {label: forecasts.forecast[:, :, index]},
            climatology.of_channels(index), forecasts.valid_times, dataset.store.lat, forecasts.lead_hours,
            channels=[names[dataset.channels[i]] for i in index], units=str(units[dataset.channels[index[0]]]),
            checkpoint=str(checkpoint), step=release.step, store=str(store), split="val", samples=len(indices),
            autoregressive_after_lead=config.data.t_out,
        )
        for variable, index in variable_channels(dataset).items()
    }
    report = next(iter(reports.values())) if len(reports) == 1 else {"variables": reports}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_report(report, out_dir)
    last = len(forecasts.lead_hours) - 1
    for variable, index in variable_channels(dataset).items():
        suffix = "" if len(reports) == 1 else f"_{variable}"
        channel = reports[variable]["channels"][0]
        plot_forecast_maps(
            forecasts.forecast[map_sample, last, index[0]], forecasts.truth[map_sample, last, index[0]],
            dataset.store.lat, dataset.store.lon, out_dir / f"maps{suffix}.png", units=reports[variable]["units"],
            quantity=VARIABLES[variable].long_name.capitalize(),
            title=f"{label}: {channel} at +{forecasts.lead_hours[last]:g} h, "
                  f"valid {forecasts.valid_times[map_sample, last]}",
        )
        plot_metric_vs_lead(reports[variable], out_dir / f"rmse_vs_lead{suffix}.png")
        plot_metric_vs_lead(reports[variable], out_dir / f"acc_vs_lead{suffix}.png", "acc")
    metrics = next((folder / "metrics.jsonl" for folder in (Path(checkpoint), Path(checkpoint).parent)
                    if (folder / "metrics.jsonl").is_file()), None)
    if metrics is not None:
        plot_loss_curves({label: metrics}, out_dir / "loss.png")
    return report
