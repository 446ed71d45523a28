"""Forecasts as CF-1.8 netCDF, readable by xarray, CDO, Panoply and NCEP-trained eyes.

Layout: one variable per forecast variable, NCEP's names and the store's units, e.g. ``hgt(time, lead_time, level,
lat, lon)`` in metres and ``uwnd(...)`` in m s-1, where ``time`` is the initialisation time
(``forecast_reference_time``) and ``lead_time`` the ``forecast_period`` in hours; ``valid_time(time,
lead_time)`` is their sum, attached as an auxiliary coordinate so tools can select by verifying time.
Times use NCEP's units (hours since 1800-01-01) so a forecast lines up with the reanalysis it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

import megageo
from megageo.data.variables import variable as registered
from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path
from megageo.eval.times import NCEP_TIME_UNITS, hours_since_1800, valid_times

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
def field_attributes(name: str) -> dict[str, str]:
    """CF attributes of a forecast variable: its (first) standard name, a long name and the store's units."""
    known = registered(name)
    return {"standard_name": known.standard_names[0], "long_name": f"{known.long_name} forecast",
            "units": known.units, "coordinates": "valid_time"}


def write_forecast_netcdf(path: str | os.PathLike, fields: Mapping[str, np.ndarray], init_times: Any,
                          lead_hours: Sequence[float], levels: Sequence[float], lat: Any, lon: Any,
                          model: str, title: str = "megageo forecast") -> Path:
    """Write each of ``fields`` (NCEP name → ``[N_init, N_lead, N_level, N_lat, N_lon]`` in the store's units)
    to ``path`` atomically, as one CF variable each.

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
    for name, forecast in fields.items():
        if np.shape(forecast) != expected:
            raise MegageoError(f"forecast {name} is shaped {np.shape(forecast)} but its coordinates give {expected} "
                               f"({', '.join(coordinates)})")
    with atomic_path(path, writer_errors=(RuntimeError,)) as temporary, netCDF4.Dataset(temporary, "w", format="NETCDF4") as dataset:
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
        for name, forecast in fields.items():
            field = dataset.createVariable(name, np.float32, tuple(coordinates), zlib=True,
                                           chunksizes=(1, 1, 1, *expected[3:]))
            field.setncatts(field_attributes(name))
            field[:] = np.asarray(forecast, dtype=np.float32)
    return Path(path)
