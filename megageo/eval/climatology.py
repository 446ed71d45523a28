"""Day-of-year × hour-of-day climatology from the training split: the reference for anomalies (ACC)
and the climatology baseline.

Bins are the 0-based day of the year (366 of them; 29 February is day 59, so later days of leap years
share a bin with the next calendar day of other years, as in WeatherBench 2) and the hours of the day
present in the training times (NCEP: 0, 6, 12, 18). A few years give only a handful of frames per bin,
so each bin is the mean of all frames at that hour within a circular window of ±``half_window_days``
days (pooled, i.e. weighted by frame count). A bin whose whole window saw no frame (a split shorter than
a year) takes the field of the nearest day, circularly, whose window did; ``window_counts`` keeps the
number of frames behind every bin so a caller can tell how much data a lookup rests on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path
from megageo.eval.times import day_of_year, hour_of_day

DAYS = 366
CHUNK_FRAMES = 256


@dataclass(frozen=True)
class Climatology:
    fields: np.ndarray  # [366, n_hours, C, H, W] float32: smoothed mean field per day of year and hour
    hours: np.ndarray  # [n_hours] the hours of the day that ``fields`` covers
    window_counts: np.ndarray  # [366, n_hours] training frames inside each bin's window (0: filled from nearest)
    half_window_days: int

    @classmethod
    def fit(cls, frames: Any, times: Any, half_window_days: int = 15) -> Climatology:
        """Accumulate the first ``len(times)`` of ``frames`` ``[T, C, H, W]``, valid at ``times``.

        ``frames`` may be an h5py dataset: it is read in chunks, so the store's whole ``frames`` can be
        passed with the times of its (leading, chronological) training split. ``times`` are datetime64,
        datetime-like objects or hours since 1800-01-01.
        """
        if not 0 <= half_window_days < DAYS // 2:
            raise MegageoError(f"half_window_days must be in [0, {DAYS // 2 - 1}], got {half_window_days}")
        days, hour_values = day_of_year(times), hour_of_day(times)
        if days.ndim != 1 or not 0 < len(days) <= len(frames):
            raise MegageoError(f"need one valid time per frame, got {days.shape} times for {len(frames)} frames")
        hours, hour_index = np.unique(hour_values, return_inverse=True)
        sums = np.zeros((DAYS, len(hours), *frames.shape[1:]), dtype=np.float64)
        counts = np.zeros((DAYS, len(hours)), dtype=np.int64)
        for start in range(0, len(days), CHUNK_FRAMES):
            rows = slice(start, min(start + CHUNK_FRAMES, len(days)))
            np.add.at(sums, (days[rows], hour_index[rows]), np.asarray(frames[rows], dtype=np.float64))
            np.add.at(counts, (days[rows], hour_index[rows]), 1)
        window_sums = _circular_window_sum(sums, half_window_days)
        window_counts = _circular_window_sum(counts, half_window_days)
        fields = np.empty(sums.shape, dtype=np.float32)
        field_axes = (1,) * (sums.ndim - 2)
        for h in range(len(hours)):
            source = _nearest_covered_day(window_counts[:, h] > 0)
            fields[:, h] = window_sums[source, h] / window_counts[source, h].reshape(-1, *field_axes)
        return cls(fields, hours, window_counts, half_window_days)

    def of_channels(self, index: Sequence[int]) -> Climatology:
        """The climatology of some channels only (one variable's, to score it on its own)."""
        return dataclasses.replace(self, fields=self.fields[:, :, list(index)])

    def lookup(self, times: Any) -> np.ndarray:
        """Climatological fields at valid ``times`` of any shape: ``[*times.shape, C, H, W]``."""
        hour_values = hour_of_day(times)
        missing = np.setdiff1d(hour_values, self.hours)
        if missing.size:
            raise MegageoError(f"climatology covers hours {self.hours.tolist()} of the day, not {missing.tolist()}")
        return self.fields[day_of_year(times), np.searchsorted(self.hours, hour_values)]

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, fields=self.fields, hours=self.hours, window_counts=self.window_counts,
                     half_window_days=self.half_window_days)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Climatology:
        with np.load(path) as stored:
            return cls(stored["fields"], stored["hours"], stored["window_counts"], int(stored["half_window_days"]))


def _circular_window_sum(values: np.ndarray, half: int) -> np.ndarray:
    """Sum over days d − half … d + half along axis 0, wrapping around the end of the year."""
    padded = np.concatenate([values[DAYS - half:], values, values[:half]])
    running = np.concatenate([np.zeros_like(values[:1]), np.cumsum(padded, axis=0)])
    return running[2 * half + 1:] - running[: DAYS]


def _nearest_covered_day(covered: np.ndarray) -> np.ndarray:
    """For every day, itself if covered, else the circularly nearest covered day (lower day number on ties).

    ``covered`` is never all False: each hour's bins come from at least one training frame."""
    covered_days = np.flatnonzero(covered)
    offset = np.abs(np.arange(DAYS)[:, None] - covered_days[None, :])
    distance = np.minimum(offset, DAYS - offset)
    return covered_days[np.argmin(distance, axis=1)]
