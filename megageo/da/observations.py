"""Observations for `megageo da`: their netCDF layout, the checks a file must pass, and the operator A.

The layout (one record per observation, CF time units; any calendar netCDF4 reads):

    dimensions:  obs
    variables:   time(obs)       e.g. "hours since 1800-01-01 00:00:0.0"
                 lat(obs)        degrees_north, a latitude of the model's grid
                 lon(obs)        degrees_east, a longitude of the grid (either 0..360 or -180..180)
                 value(obs)      the observed value, in the variable's units (m for hgt)
                 error_std(obs)  the observation error's standard deviation, same units
    attributes:  variable = "hgt" (an NCEP name the checkpoint's model carries), level = 500 (hPa)

A station is a grid point: A(x) selects values of the state, so it is linear (what guidance needs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from megageo.errors import MegageoError
from megageo.eval.times import NCEP_TIME_UNITS, hours_since_1800, to_datetime64
from megageo.io.atomic import atomic_path

GRID_TOLERANCE_DEG = 1e-4


@dataclass(frozen=True)
class Observations:
    variable: str
    level: float
    time: np.ndarray
    """datetime64[s] [M]"""
    lat: np.ndarray
    lon: np.ndarray
    value: np.ndarray
    error_std: np.ndarray

    def __len__(self) -> int:
        return len(self.value)


def write_observations(path: str | os.PathLike, obs: Observations) -> Path:
    import netCDF4

    with atomic_path(path, writer_errors=(RuntimeError,)) as temporary, netCDF4.Dataset(temporary, "w") as dataset:
        dataset.setncatts({"Conventions": "CF-1.8", "title": "megageo observations", "variable": obs.variable,
                           "level": float(obs.level)})
        dataset.createDimension("obs", len(obs))
        columns = {"time": (hours_since_1800(obs.time), {"units": NCEP_TIME_UNITS, "standard_name": "time"}),
                   "lat": (obs.lat, {"units": "degrees_north", "standard_name": "latitude"}),
                   "lon": (obs.lon, {"units": "degrees_east", "standard_name": "longitude"}),
                   "value": (obs.value, {"long_name": f"observed {obs.variable} at {obs.level:g} hPa"}),
                   "error_std": (obs.error_std, {"long_name": "observation error standard deviation"})}
        for name, (values, attributes) in columns.items():
            variable = dataset.createVariable(name, "f8", ("obs",))
            variable.setncatts(attributes)
            variable[:] = np.asarray(values, dtype=np.float64)
    return Path(path)


def read_observations(path: str | os.PathLike) -> Observations:
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise MegageoError(f"{path}: no such observation file")
    try:
        with netCDF4.Dataset(path) as dataset:
            missing = [name for name in ("time", "lat", "lon", "value", "error_std") if name not in dataset.variables]
            if missing or "variable" not in dataset.ncattrs() or "level" not in dataset.ncattrs():
                raise MegageoError(f"{path}: not an observation file (needs variables time, lat, lon, value, "
                                   f"error_std and attributes variable, level; missing {missing or 'an attribute'})")
            time = dataset["time"]
            dates = netCDF4.num2date(time[:], time.units, getattr(time, "calendar", "standard"),
                                     only_use_cftime_datetimes=False)
            columns = {name: np.ma.filled(dataset[name][:].astype(np.float64), np.nan)
                       for name in ("lat", "lon", "value", "error_std")}
            return Observations(str(dataset.variable), float(dataset.level), to_datetime64(np.asarray(dates)),
                                **columns)
    except OSError as error:
        raise MegageoError(f"{path}: not a readable netCDF file ({error})") from None


def _first(bad: np.ndarray, what: str, path: str, detail) -> None:
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise MegageoError(f"{path}: {int(bad.sum())} observation(s) {what}, the first is #{index} ({detail(index)})")


@dataclass(frozen=True)
class ObservationOperator:
    """A: a state [N, L, C, H, W] (normalised) → the observed values [N, M], by one gather."""

    flat_index: torch.Tensor

    def __call__(self, state: torch.Tensor) -> torch.Tensor:
        return state.flatten(1)[:, self.flat_index]


def locate(obs: Observations, window: np.ndarray, lat: np.ndarray, lon: np.ndarray, channel: int,
           state_shape: tuple[int, int, int, int], path: str) -> ObservationOperator:
    """Check every observation against the window's frame times and the grid (one line for the first bad one of
    each kind) and build the operator that selects them."""
    _first(~np.isfinite(obs.value), "have no value (NaN)", path, lambda i: f"at {obs.time[i]}")
    _first(~(obs.error_std > 0), "have a non-positive or missing error_std", path,
           lambda i: f"error_std {obs.error_std[i]}")
    frame = np.searchsorted(window, obs.time)
    on_frame = (frame < len(window)) & (window[np.minimum(frame, len(window) - 1)] == obs.time)
    _first(~on_frame, f"fall outside the window {window[0]} .. {window[-1]} (or between its 6-hourly frames)",
           path, lambda i: f"at {obs.time[i]}")
    row = np.abs(obs.lat[:, None] - lat[None]).argmin(1)
    lon_wrapped = np.mod(obs.lon, 360.0)
    distance = np.abs((lon_wrapped[:, None] - np.mod(lon, 360.0)[None] + 180.0) % 360.0 - 180.0)
    col = distance.argmin(1)
    off_grid = (np.abs(lat[row] - obs.lat) > GRID_TOLERANCE_DEG) | (distance[np.arange(len(col)), col] > GRID_TOLERANCE_DEG)
    off_grid |= ~np.isfinite(obs.lat) | ~np.isfinite(obs.lon)
    _first(off_grid, "are not at a grid point of the model's grid", path,
           lambda i: f"lat {obs.lat[i]}, lon {obs.lon[i]}")
    steps, channels, height, width = state_shape
    flat = ((frame * channels + channel) * height + row) * width + col
    return ObservationOperator(torch.as_tensor(flat, dtype=torch.long))
