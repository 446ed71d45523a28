"""Valid times as NCEP stores them (hours since 1800-01-01) or as numpy datetime64, and their calendar parts."""

from __future__ import annotations

from typing import Any

import numpy as np

NCEP_EPOCH = np.datetime64("1800-01-01T00:00:00", "s")
NCEP_TIME_UNITS = "hours since 1800-01-01 00:00:00"


def to_datetime64(times: Any) -> np.ndarray:
    """datetime64[s] from datetime64 of any unit, from numbers of hours since 1800-01-01 (NCEP's ``time``),
    or from datetime-like objects (``datetime.datetime``, or the cftime dates the data store hands out)."""
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[s]")
    if times.dtype == object:
        stamps = [f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
                  for t in times.ravel()]
        return np.array(stamps, dtype="datetime64[s]").reshape(times.shape)
    seconds = np.rint(times.astype(np.float64) * 3600).astype(np.int64)
    return NCEP_EPOCH + seconds.astype("timedelta64[s]")


def hours_since_1800(times: Any) -> np.ndarray:
    """Float hours since 1800-01-01, the inverse of ``to_datetime64`` for numeric input."""
    return (to_datetime64(times) - NCEP_EPOCH).astype(np.float64) / 3600


def day_of_year(times: Any) -> np.ndarray:
    """0-based day of the year (0..365); 29 February is day 59 and shifts later days by one in leap years."""
    stamps = to_datetime64(times)
    return (stamps.astype("datetime64[D]") - stamps.astype("datetime64[Y]")).astype(np.int64)


def hour_of_day(times: Any) -> np.ndarray:
    """Whole hour of the day (0..23), e.g. NCEP's synoptic hours 0, 6, 12, 18."""
    stamps = to_datetime64(times)
    return (stamps.astype("datetime64[h]") - stamps.astype("datetime64[D]")).astype(np.int64)


def valid_times(init_times: Any, lead_hours: Any) -> np.ndarray:
    """Valid time of every (initialisation, lead) pair: shape ``[len(init_times), len(lead_hours)]``."""
    leads = np.rint(np.asarray(lead_hours, dtype=np.float64) * 3600).astype(np.int64).astype("timedelta64[s]")
    return to_datetime64(init_times).reshape(-1, 1) + leads.reshape(1, -1)
