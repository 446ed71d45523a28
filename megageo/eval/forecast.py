"""A forecast from one initial time in the store, rolled out to a requested lead, as CF netCDF (`megageo forecast`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from megageo.data.dataset import WindowDataset
from megageo.errors import MegageoError
from megageo.eval.evaluate import model_step
from megageo.model.rollout import leads_for_hours, rollout
from megageo.eval.times import to_datetime64


def initial_window(dataset: WindowDataset, init_time: str) -> torch.Tensor:
    """The T_in frames ending at `init_time` (the analysis the forecast starts from), normalised, [1, T_in, C, H, W]."""
    times = to_datetime64(dataset.store.dates(np.arange(len(dataset.store))))
    wanted = np.datetime64(init_time, "s")
    matches = np.flatnonzero(times.astype("datetime64[s]") == wanted)
    if matches.size == 0:
        raise MegageoError(f"{dataset.store.path}: no frame at {init_time} (store covers {times[0]} .. {times[-1]})")
    end = int(matches[0]) + 1
    if end < dataset.t_in:
        raise MegageoError(f"{init_time} leaves fewer than T_in = {dataset.t_in} frames before it in the store")
    gaps = dataset.store.gaps()
    spanned = gaps[(gaps >= end - dataset.t_in) & (gaps < end - 1)]
    if spanned.size:
        raise MegageoError(f"the T_in = {dataset.t_in} frames ending at {init_time} span the store's gap after "
                           f"{dataset.store.dates(int(spanned[-1]))[0]}")
    return dataset.normalized_frames(end - dataset.t_in, end)[None]


def write_forecast(checkpoint: str | Path, init_time: str, lead_hours: float, out: Path,
                   store: str | None = None) -> Path:
    from megageo.convert.release import build_model, load_release
    from megageo.eval.evaluate import normalised_dataset, variable_channels
    from megageo.eval.netcdf import write_forecast_netcdf

    release = load_release(checkpoint)
    config = release.config
    dataset = normalised_dataset(store or config.data.store, release.stats, "train", config.data.t_in, 1)
    window = initial_window(dataset, init_time)
    leads = leads_for_hours(lead_hours, dataset.step_hours)
    with torch.no_grad():
        forecast = dataset.denormalize(rollout(model_step(build_model(release)), window, leads)).numpy()
    groups = variable_channels(dataset)
    first = next(iter(groups.values()))
    return write_forecast_netcdf(
        out, {name: forecast[:, :, index] for name, index in groups.items()}, [np.datetime64(init_time, "s")],
        [dataset.step_hours * (i + 1) for i in range(leads)],
        dataset.store.level[[dataset.channels[i] for i in first]], dataset.store.lat, dataset.store.lon,
        model=f"megageo {config.model.mixer.type} ({checkpoint}, step {release.step})",
    )
