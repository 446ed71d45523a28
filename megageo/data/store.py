"""The HDF5 store: one `frames[T, C, H, W]` float32 array with its coordinates, statistics and provenance.

Layout (written by `megageo.data.build`):
    frames  [T, C, H, W] float32, chunked one frame at a time so any contiguous time slice reads cheaply
    time    [T] float64, attrs units (hours since 1800-01-01) and calendar
    variable, units  [C] strings: each channel's NCEP variable name and units (absent in single-variable stores
                     written before variables existed: geopotential height in m)
    level   [C] float64 hPa;  lat [H] degrees north, 90 -> -90;  lon [W] degrees east
    mean, std  [C] float64 per channel, over frames[:train_end] only (the chronological training split)
    attrs   train_end, train_fraction, sources (JSON: name, bytes, sha256, frames per source file)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from megageo.data.variables import channel_name
from megageo.errors import MegageoError


def is_gap(steps: np.ndarray | float, regular_step: float) -> np.ndarray:
    """Whether each step (hours) is a gap: longer than 1.5 regular steps, which catches a missing year of 6-hourly
    data but not monthly means (28 to 31 days apart). The builder and the store share this one rule."""
    return np.asarray(steps) > 1.5 * regular_step


class Store:
    """Read-only view of a store. The HDF5 file opens lazily and reopens in a forked child, so one Store can
    be handed to DataLoader workers."""

    def __init__(self, path: str | Path):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise MegageoError(f"{self.path}: no such store")
        try:
            with h5py.File(self.path, "r") as h5:
                self.shape: tuple[int, int, int, int] = h5["frames"].shape
                self.time = h5["time"][:]
                self.time_units = str(h5["time"].attrs["units"])
                self.calendar = str(h5["time"].attrs["calendar"])
                self.level, self.lat, self.lon = h5["level"][:], h5["lat"][:], h5["lon"][:]
                channels = self.level.size
                self.variable = np.array(h5["variable"].asstr()[:] if "variable" in h5 else ["hgt"] * channels)
                self.units = np.array(h5["units"].asstr()[:] if "units" in h5 else ["m"] * channels)
                self.mean, self.std = h5["mean"][:], h5["std"][:]
                self.train_end = int(h5.attrs["train_end"])
                self.train_fraction = float(h5.attrs["train_fraction"])
                self.sources: list[dict] = json.loads(h5.attrs["sources"])
        except (OSError, KeyError) as error:
            raise MegageoError(f"{self.path}: not a megageo store ({error})") from None
        self._file = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    def channel_names(self) -> list[str]:
        return [channel_name(name, level) for name, level in zip(self.variable, self.level)]

    def channels(self, variables: Sequence[str] | None = None, levels: Sequence[float] | None = None) -> list[int]:
        """Channel indices of every (variable, level) pair, variable-major in the order asked for; None stands for
        all the store has. A pair the store lacks is one line naming the channels it has."""
        variables = list(dict.fromkeys(self.variable)) if variables is None else variables
        levels = list(dict.fromkeys(self.level.tolist())) if levels is None else levels
        index = []
        for name in variables:
            for level in levels:
                matches = np.flatnonzero((self.variable == name) & np.isclose(self.level, level))
                if matches.size == 0:
                    raise MegageoError(f"{self.path}: no channel {channel_name(name, level)} ({name} at {level:g} hPa) "
                                       f"in the store (channels: {', '.join(self.channel_names())})")
                index.append(int(matches[0]))
        return index

    def read(self, start: int, stop: int) -> np.ndarray:
        """frames[start:stop] as float32 [n, C, H, W]: one contiguous hyperslab, nothing else."""
        if not 0 <= start <= stop <= len(self):
            raise MegageoError(f"{self.path}: time slice {start}:{stop} outside 0:{len(self)}")
        if self._pid != os.getpid():
            import h5py

            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file["frames"][start:stop]

    def dates(self, index) -> np.ndarray:
        """cftime datetimes of the given time indices."""
        import cftime

        return np.atleast_1d(cftime.num2date(self.time[index], self.time_units, self.calendar))

    def steps(self) -> np.ndarray:
        """Hours between consecutive frames."""
        return np.diff(self.time)

    def regular_step(self) -> float:
        """The median step in hours (0 for a single frame): the step windows advance by."""
        steps = self.steps()
        return float(np.median(steps)) if steps.size else 0.0

    def gaps(self) -> np.ndarray:
        """Indices i whose step time[i + 1] - time[i] is a gap (`is_gap`): a missing year, or the seam between
        separate runs in a store built with gaps allowed. No window spans one."""
        return np.flatnonzero(is_gap(self.steps(), self.regular_step()))

    def window_starts(self, first: int, end: int, span: int, stride: int = 1) -> np.ndarray:
        """Starts of the windows of `span` consecutive frames within frames [first, end), every `stride`, that
        cross no gap."""
        starts = np.arange(first, end - span + 1, stride)
        return starts[~np.isin(starts, (self.gaps()[:, None] - np.arange(span - 1)).ravel())]

    def first_irregular_step(self) -> int | None:
        """Index i of the first step time[i + 1] - time[i] that is neither the regular step nor a gap, or None.
        Differences under 3.6 s count as equal: float32 time axes in days round that much."""
        steps, regular = self.steps(), self.regular_step()
        irregular = np.flatnonzero((np.abs(steps - regular) > 1e-3) & ~is_gap(steps, regular))
        return int(irregular[0]) if irregular.size else None

    def summary(self) -> str:
        """What `megageo data inspect` prints."""
        steps = self.steps()
        first, last = self.dates([0, -1]) if len(self) else ("-", "-")
        if steps.size and self.first_irregular_step() is None:
            gaps = self.gaps().size
            step = f"{self.regular_step():g} h (regular{f', {gaps} gap(s)' if gaps else ''})"
        else:
            step = f"irregular, {steps.min():g} to {steps.max():g} h" if steps.size else "single frame"
        lines = [
            f"store     {self.path}",
            f"frames    {self.shape} [time, channel, lat, lon] float32",
            f"time      {first} .. {last}, step {step}, calendar {self.calendar}",
            f"lat       {self.lat[0]:g} .. {self.lat[-1]:g} ({self.lat.size} points)",
            f"lon       {self.lon[0]:g} .. {self.lon[-1]:g} ({self.lon.size} points)",
            f"split     train frames 0..{self.train_end - 1} ({self.train_fraction:g}), "
            f"val frames {self.train_end}..{len(self) - 1}",
            "channel     level (hPa)       mean        std   units   [train split]",
        ]
        lines += [f"{name:<11} {p:>11g} {m:>10.2f} {s:>10.2f}   {u}"
                  for name, p, m, s, u in zip(self.variable, self.level, self.mean, self.std, self.units)]
        lines.append(f"sources   {len(self.sources)} file(s)")
        lines += [f"  {s['name']}  {s['frames']} frames  {s['bytes']} bytes  sha256 {s['sha256']}"
                  for s in self.sources]
        return "\n".join(lines)
