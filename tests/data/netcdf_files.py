"""Tiny netCDF files in every layout the pipeline must read, and the float32 values it must read from them.

Two naming styles: "ncep" (PSL's hgt.YYYY.nc: hgt/level/lat/lon/time, metadata without standard_name on hgt)
and "cf" (z/pressure/latitude/longitude/valid_time with CF standard_name, time in days since 1979 on a
proleptic_gregorian calendar). Two encodings: float32, and NCEP's netCDF3 int16 packing.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

LEVELS = np.array([850.0, 500.0, 200.0])
LAT = np.linspace(90, -90, 5)
LON = np.arange(0, 360, 45.0)
G0 = 9.80665
HOURS_1979 = 1569072.0  # 1979-01-01 00:00 in hours since 1800-01-01
NAMES = {"ncep": ("time", "level", "lat", "lon", "hgt"), "cf": ("valid_time", "pressure", "latitude", "longitude", "z")}
HEIGHT_ATTRS = {
    "ncep": {"long_name": "4xDaily Geopotential height", "var_desc": "Geopotential height", "units": "m"},
    "cf": {"standard_name": "geopotential_height", "units": "m"},
}
GEOPOTENTIAL_ATTRS = {"standard_name": "geopotential", "units": "m**2 s**-2"}
CF_TIME_ATTRS = {"standard_name": "time", "units": "days since 1979-01-01", "calendar": "proleptic_gregorian"}


def heights(frames: int, seed: int = 0) -> np.ndarray:
    """Plausible geopotential heights (m) [T, level, lat, lon]: level mean plus noise."""
    rng = np.random.default_rng(seed)
    base = np.array([1457.0, 5510.0, 11784.0])[None, :, None, None]
    return base + 100.0 * rng.standard_normal((frames, LEVELS.size, LAT.size, LON.size))


def write(
    path: Path,
    values: np.ndarray,
    hours: np.ndarray,
    style: str = "ncep",
    packed: tuple[float, float] | None = None,
    lat_ascending: bool = False,
    geopotential: bool = False,
    levels: np.ndarray = LEVELS,
    lat: np.ndarray = LAT,
) -> np.ndarray:
    """Write `values` (m, [T, level, lat, lon] with lat as given, north to south) and return what a correct
    reader yields as float32: packed values are add_offset + packed * scale_factor, rounded once."""
    cf = style == "cf"
    names = NAMES[style]
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC" if packed else "NETCDF4_CLASSIC") as ds:
        for name, size in zip(names[:4], (None, levels.size, lat.size, LON.size)):
            ds.createDimension(name, size)
        time = ds.createVariable(names[0], "f8", (names[0],))
        if cf:
            time.setncatts(CF_TIME_ATTRS)
            time[:] = (hours - HOURS_1979) / 24
        else:
            time.setncatts({"units": "hours since 1800-01-01 00:00:0.0", "long_name": "Time", "axis": "T"})
            time[:] = hours
        level = ds.createVariable(names[1], "f4", (names[1],))
        if geopotential:
            level.setncatts({"standard_name": "air_pressure", "units": "Pa"})
            level[:] = levels * 100
        else:
            level.setncatts({"units": "hPa" if cf else "millibar", "positive": "down"})
            level[:] = levels
        ds.createVariable(names[2], "f4", (names[2],)).setncatts({"units": "degrees_north"})
        ds.createVariable(names[3], "f4", (names[3],)).setncatts({"units": "degrees_east"})
        ds[names[2]][:] = lat[::-1] if lat_ascending else lat
        ds[names[3]][:] = LON
        stored = values[:, :, ::-1] if lat_ascending else values
        if geopotential:
            stored = stored * G0
        var = ds.createVariable(names[4], "i2" if packed else "f4", names[:4])
        var.setncatts(GEOPOTENTIAL_ATTRS if geopotential else HEIGHT_ATTRS[style])
        if packed:
            scale, offset = packed
            var.setncatts({"scale_factor": np.float32(scale), "add_offset": np.float32(offset)})
            var.missing_value = np.int16(32766)  # NCEP's packed missing value
            var.set_auto_maskandscale(False)
            raw = np.round((stored - np.float32(offset)) / np.float32(scale)).astype(np.int16)
            var[:] = raw
            expected = float(np.float32(offset)) + raw.astype(np.float64) * float(np.float32(scale))
        else:
            var.setncatts({"missing_value": np.float32(-9.96921e36)})
            var[:] = stored
            expected = stored.astype(np.float32).astype(np.float64)
        if geopotential:
            expected = expected / G0
        expected = expected.astype(np.float32)
    return expected[:, :, ::-1] if lat_ascending else expected
