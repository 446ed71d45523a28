"""`megageo da assimilate`: one analysis window from a diffusion checkpoint and an observation file, written as a
CF netCDF ensemble (`member` dimension) with its mean and spread, readable by xarray.

Filtering (the fair comparison with a filter) puts the analysis time at the window's end, so only observations
up to it count; smoothing centres the window on it and uses the observations on both sides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

import megageo
from megageo.config import Config, with_sampler_overrides
from megageo.data.anomalies import as_field
from megageo.data.grid import check_spectral_truncation, merge_pole_rows, truncate_spherical_harmonics
from megageo.errors import MegageoError
from megageo.eval.netcdf import COORDINATE_ATTRIBUTES, VALID_TIME_ATTRIBUTES, field_attributes
from megageo.eval.times import hours_since_1800, to_datetime64
from megageo.io.atomic import atomic_path

if TYPE_CHECKING:
    from megageo.convert.release import ReleaseCheckpoint

MODES = ("filter", "smooth")
STEP = np.timedelta64(6, "h")


def window_times(analysis_time: np.datetime64, frames: int, mode: str) -> np.ndarray:
    """The window's frame times: ending at the analysis time (filter) or centred on it (smooth)."""
    if mode not in MODES:
        raise MegageoError(f"--mode must be filter or smooth, got {mode!r}")
    before = frames - 1 if mode == "filter" else (frames - 1) // 2
    return to_datetime64(analysis_time) + (np.arange(frames) - before) * STEP


@dataclass(frozen=True)
class Channels:
    """The model's channels as the checkpoint recorded them, and its normalisation (`data.normalisation`)."""

    variables: list[str]
    levels: list[float]
    mean: np.ndarray
    """[C], or [C, H, W] for a model normalised per grid point."""
    std: np.ndarray

    @classmethod
    def of(cls, stats: dict) -> Channels:
        return cls(list(stats["variables"]), [float(v) for v in stats["levels"]], np.asarray(stats["mean"]),
                   np.asarray(stats["std"]))

    def physical(self, normalised: torch.Tensor) -> np.ndarray:
        """Normalised states [..., C, H, W] in the variables' own units."""
        return normalised.numpy() * as_field(self.std) + as_field(self.mean)

    def normalised(self, fields: np.ndarray) -> torch.Tensor:
        """States [..., C, H, W] in the variables' own units, in the model's (the inverse of `physical`)."""
        return torch.as_tensor((fields - as_field(self.mean)) / as_field(self.std), dtype=torch.float32)

    def normalise(self, values: np.ndarray, error_std: np.ndarray | float, flat_index: np.ndarray,
                  window_shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Observed values [..., M] and their error stds in the model's units, the observations at `flat_index`
        of a window [L, C, H, W]: less the mean where each lies, over its channel's std."""
        _, count, height, width = window_shape
        channel, point = flat_index // (height * width) % count, flat_index % (height * width)
        mean = np.broadcast_to(as_field(self.mean), (count, height, width)).reshape(count, -1)
        return (values - mean[channel, point]) / self.std[channel], np.asarray(error_std) / self.std[channel]

    def index(self, variable: str, level: float) -> int:
        for i, (name, at) in enumerate(zip(self.variables, self.levels)):
            if name == variable and abs(at - level) < 1e-6:
                return i
        pairs = ", ".join(f"{n} {lv:g} hPa" for n, lv in zip(self.variables, self.levels))
        raise MegageoError(f"observations of {variable} at {level:g} hPa, but the model carries only {pairs}")


def write_analysis_netcdf(path: str | os.PathLike, ensemble: np.ndarray, times: np.ndarray, channels: Channels,
                          lat: np.ndarray, lon: np.ndarray, attributes: dict[str, str | float]) -> Path:
    """`ensemble` [N, L, C, H, W] in physical units → one variable per NCEP name, `name(member, time, level, lat,
    lon)`, plus `name_mean` and `name_spread` (the ensemble's standard deviation, N − 1 in the denominator)."""
    import netCDF4

    levels = sorted(set(channels.levels), reverse=True)
    with atomic_path(path, writer_errors=(RuntimeError,)) as temporary, netCDF4.Dataset(temporary, "w") as dataset:
        dataset.setncatts({"Conventions": "CF-1.8", "title": "megageo analysis ensemble", "institution": "megageo",
                           "source": f"megageo {megageo.__version__}",
                           "history": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} written by megageo da",
                           **attributes})
        coordinates = {"member": np.arange(len(ensemble), dtype=np.int32), "time": hours_since_1800(times),
                       "level": np.asarray(levels, np.float32), "lat": np.asarray(lat, np.float32),
                       "lon": np.asarray(lon, np.float32)}
        for name, values in coordinates.items():
            dataset.createDimension(name, len(values))
            variable = dataset.createVariable(name, values.dtype, (name,))
            variable.setncatts({"long_name": "ensemble member"} if name == "member"
                               else VALID_TIME_ATTRIBUTES if name == "time" else COORDINATE_ATTRIBUTES[name])
            variable[:] = values
        for name in dict.fromkeys(channels.variables):
            index = [i for i, v in enumerate(channels.variables) if v == name]
            rows = [levels.index(channels.levels[i]) for i in index]
            fields = np.full((len(ensemble), len(times), len(levels), len(lat), len(lon)), np.nan, np.float32)
            fields[:, :, rows] = ensemble[:, :, index]
            attrs = {key: value for key, value in field_attributes(name).items() if key != "coordinates"}
            dims = ("member", "time", "level", "lat", "lon")
            for suffix, values, long_name in (("", fields, "analysis"), ("_mean", fields.mean(0), "analysis mean"),
                                              ("_spread", fields.std(0, ddof=1) if len(fields) > 1
                                               else np.zeros_like(fields[0]), "analysis spread")):
                variable = dataset.createVariable(name + suffix, "f4", dims if not suffix else dims[1:], zlib=True)
                variable.setncatts({**attrs, "long_name": f"{attrs['long_name'].removesuffix(' forecast')} {long_name}"})
                if suffix == "_spread":
                    del variable.standard_name
                variable[:] = values
    return Path(path)


def on_the_sphere(fields: np.ndarray, lat: np.ndarray, spectral_truncation: int) -> np.ndarray:
    """Analysis fields [..., H, W] in physical units as the sphere has them: each pole row one value, and with
    `diffusion.spectral_truncation` no detail finer than the data's own resolution."""
    fields = merge_pole_rows(fields, lat)
    return truncate_spherical_harmonics(fields, spectral_truncation) if spectral_truncation else fields


def load_diffusion_release(checkpoint: str | Path, command: str, overrides: tuple[str, ...]
                           ) -> tuple[ReleaseCheckpoint, Config]:
    """A `task: diffusion` checkpoint (refused with one line if it is another task's) and its config with the
    sampler `overrides` applied; the release keeps the config its weights were trained with."""
    from megageo.convert.release import load_release

    release = load_release(checkpoint)
    if release.config.task != "diffusion":
        raise MegageoError(f"{checkpoint}: a task {release.config.task!r} checkpoint; {command} needs task: diffusion")
    return release, with_sampler_overrides(release.config, overrides)


def sampling_denoiser(release: ReleaseCheckpoint) -> torch.nn.Module:
    """The release's denoiser on this machine's accelerator when it has one (the CPU otherwise): a 340M-class
    prior samples in minutes on a GPU and in hours on a CPU."""
    from megageo.convert.release import build_model
    from megageo.parallel import groups

    return build_model(release).to(groups.device())


def assimilate(checkpoint: str | Path, obs_path: str | Path, out: str | Path, members: int | None = None,
               analysis_time: str | None = None, mode: str = "filter", store: str | None = None,
               seed: int = 0, progress: bool = True, overrides: tuple[str, ...] = ()) -> Path:
    """Everything a user's bad input can break is checked before the model is built. `overrides` set the sampler
    (`diffusion.steps=64`, ...)."""
    from tqdm import tqdm

    from megageo.da.observations import locate, read_observations
    from megageo.da.posterior import sample_posterior
    from megageo.data.store import Store

    release, config = load_diffusion_release(checkpoint, "da assimilate", overrides)
    if config.diffusion.start_time < 1:
        raise MegageoError("diffusion.start_time below 1 starts from window OI's first guess, which only da twin "
                           "computes; da assimilate samples from pure noise (start_time=1)")
    grid = Store(store or release.stats["store"])
    check_spectral_truncation(config.diffusion.spectral_truncation, grid.lat)
    obs = read_observations(obs_path)
    if len(obs) == 0:
        raise MegageoError(f"{obs_path}: holds no observations")
    when = np.datetime64(analysis_time) if analysis_time else obs.time.max()
    times = window_times(when, config.data.t_in, mode)
    channels = Channels.of(release.stats)
    channel = channels.index(obs.variable, obs.level)
    shape = (config.data.t_in, *release.frame_shape)
    observe = locate(obs, times, grid.lat, grid.lon, channel, shape, str(obs_path))
    y, std = (torch.as_tensor(v, dtype=torch.float32)
              for v in channels.normalise(obs.value, obs.error_std, observe.flat_index.numpy(), shape))
    members = members or config.diffusion.members
    model = sampling_denoiser(release)
    steps = config.diffusion.steps
    with tqdm(total=steps, desc=f"assimilate {len(obs)} obs, {members} members", unit="step",
              disable=not progress) as bar:
        ensemble = sample_posterior(model, config.diffusion, (members, *shape), observe, y, std,
                                    torch.Generator().manual_seed(seed), progress=lambda _: bar.update())
    fields = on_the_sphere(channels.physical(ensemble), grid.lat, config.diffusion.spectral_truncation)
    return write_analysis_netcdf(out, fields, times, channels, grid.lat, grid.lon,
                                 {"analysis_time": str(to_datetime64(when)), "mode": mode,
                                  "observations": str(obs_path), "checkpoint": str(checkpoint)})
