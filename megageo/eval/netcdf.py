"""Forecasts as CF-1.8 netCDF, readable by xarray, CDO, Panoply and NCEP-trained eyes.

Layout: ``hgt(time, lead_time, level, lat, lon)`` in metres, where ``time`` is the initialisation time
(``forecast_reference_time``) and ``lead_time`` the ``forecast_period`` in hours; ``valid_time(time,
lead_time)`` is their sum, attached as an auxiliary coordinate so tools can select by verifying time.
Times use NCEP's units (hours since 1800-01-01) so a forecast lines up with the reanalysis it came from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

import megageo
from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path
from megageo.eval.times import NCEP_TIME_UNITS, hours_since_1800, valid_times

VARIABLE = "hgt"
COORDINATE_ATTRIBUTES: dict[str, dict[str, str]] = {
    "time": {"standard_name": "forecast_reference_time", "long_name": "initialisation time",
             "units": NCEP_TIME_UNITS, "calendar": "standard"},
    "lead_time": {"standard_name": "forecast_period", "long_name": "lead time", "units": "hours"},
    "level": {"standard_name": "air_pressure", "long_name": "pressure level", "units": "hPa",
              "positive": "down", "axis": "Z"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
}
VALID_TIME_ATTRIBUTES = {"standard_name": "time", "long_name": "valid time", "units": NCEP_TIME_UNITS,
                         "calendar": "standard"}
FIELD_ATTRIBUTES = {"standard_name": "geopotential_height", "long_name": "geopotential height forecast",
                    "units": "m", "coordinates": "valid_time"}


def write_forecast_netcdf(path: str | os.PathLike, forecast: np.ndarray, init_times: Any,
                          lead_hours: Sequence[float], levels: Sequence[float], lat: Any, lon: Any,
                          model: str, title: str = "megageo geopotential height forecast") -> Path:
    """Write ``forecast`` ``[N_init, N_lead, N_level, N_lat, N_lon]`` (metres) to ``path`` atomically.

    ``init_times`` are datetime64 or hours since 1800-01-01; ``model`` names the run or checkpoint and
    goes into the ``source`` attribute. Returns the path written.
    """
    coordinates = {
        "time": hours_since_1800(np.atleast_1d(init_times)),
        "lead_time": np.asarray(lead_hours, dtype=np.float64),
        "level": np.asarray(levels, dtype=np.float32),
        "lat": np.asarray(lat, dtype=np.float32),
        "lon": np.asarray(lon, dtype=np.float32),
    }
    expected = tuple(len(values) for values in coordinates.values())
    if np.shape(forecast) != expected:
        raise MegageoError(f"forecast is shaped {np.shape(forecast)} but its coordinates give {expected} "
                           f"({', '.join(coordinates)})")
    with atomic_path(path) as temporary, netCDF4.Dataset(temporary, "w", format="NETCDF4") as dataset:
        dataset.setncatts({
            "Conventions": "CF-1.8",
            "title": title,
            "institution": "megageo",
            "source": f"megageo {megageo.__version__}, model {model}",
            "history": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} written by megageo forecast",
        })
        for name, values in coordinates.items():
            dataset.createDimension(name, len(values))
            variable = dataset.createVariable(name, values.dtype, (name,))
            variable.setncatts(COORDINATE_ATTRIBUTES[name])
            variable[:] = values
        valid = dataset.createVariable("valid_time", np.float64, ("time", "lead_time"))
        valid.setncatts(VALID_TIME_ATTRIBUTES)
        valid[:] = hours_since_1800(valid_times(init_times, lead_hours))
        field = dataset.createVariable(VARIABLE, np.float32, tuple(coordinates), zlib=True,
                                       chunksizes=(1, 1, 1, *expected[3:]))
        field.setncatts(FIELD_ATTRIBUTES)
        field[:] = np.asarray(forecast, dtype=np.float32)
    return Path(path)
