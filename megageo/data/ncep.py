"""Read geopotential height from CF netCDF files: NCEP/NCAR Reanalysis 1 `hgt.YYYY.nc` and others.

Variables and coordinates are found by CF metadata (standard_name, units, axis, long_name), never by one
hard-coded name, so PSL's `hgt(time, level, lat, lon)` and e.g. `z(time, pressure, latitude, longitude)` read
alike. Values come back as float32 geopotential height in metres, (time, level, lat, lon), latitude north to
south. Packed int16 files are unpacked in float64 (`add_offset + packed * scale_factor`) and rounded to float32
once; CF `geopotential` (m² s⁻², e.g. ERA5's `z`) is divided by g0 = 9.80665 m s⁻².
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from megageo.data.netcdf3 import required_bytes
from megageo.errors import MegageoError

G0 = 9.80665  # standard gravity (m s-2), WMO's conversion from geopotential to geopotential height
TIME_UNITS = "hours since 1800-01-01 00:00:00"  # NCEP R1's own time origin, kept in the store

HEIGHT_UNITS = {"m", "gpm", "meter", "meters", "metre", "metres"}
GEOPOTENTIAL_UNITS = {"m2s-2", "m2/s2"}
PRESSURE_UNITS = {"hpa": 1.0, "mbar": 1.0, "millibar": 1.0, "millibars": 1.0, "mb": 1.0, "pa": 0.01}
LAT_UNITS = {"degrees_north", "degree_north", "degrees_n", "degree_n"}
LON_UNITS = {"degrees_east", "degree_east", "degrees_e", "degree_e"}


@dataclass(frozen=True)
class NcSource:
    """What one file holds, learned from its metadata before any data is read."""

    path: Path
    variable: str
    dims: tuple[str, ...]  # the variable's dimensions, in file order
    roles: dict[str, str]  # dimension name -> "time" | "level" | "lat" | "lon"
    per_metre: float  # units per metre of height: 1 for geopotential height, g0 for geopotential
    time: np.ndarray  # float64 hours since 1800-01-01 in `calendar`
    calendar: str
    levels: np.ndarray  # hPa, file order
    lat: np.ndarray  # north to south
    lon: np.ndarray
    flip_lat: bool  # file stores latitude south to north

    def level_index(self, level: float) -> int:
        matches = np.flatnonzero(np.isclose(self.levels, level, atol=1e-3))
        if matches.size == 0:
            have = ", ".join(f"{p:g}" for p in self.levels)
            raise MegageoError(f"{self.path}: level {level:g} hPa absent from '{self.variable}' (levels: {have} hPa)")
        return int(matches[0])


def _attr(var, name: str) -> str:
    return str(getattr(var, name, "")).strip().lower()


def _squeezed_units(var) -> str:
    return _attr(var, "units").replace(" ", "").replace("**", "").replace("^", "")


def _height_scale(var) -> float | None:
    """Units per metre: 1 for geopotential height in metres, g0 for geopotential, None for anything else."""
    standard = _attr(var, "standard_name")
    units = _squeezed_units(var)
    described = f"{_attr(var, 'long_name')} {_attr(var, 'var_desc')}"
    if standard == "geopotential_height" or (not standard and "geopotential height" in described):
        if units not in HEIGHT_UNITS:
            raise MegageoError(f"geopotential height '{var.name}' has units '{var.units}', expected metres")
        return 1.0
    if standard == "geopotential" or (not standard and "geopotential" in described and units in GEOPOTENTIAL_UNITS):
        if units not in GEOPOTENTIAL_UNITS:
            raise MegageoError(f"geopotential '{var.name}' has units '{var.units}', expected m2 s-2")
        return G0
    return None


def _pressure_scale(var) -> float | None:
    units = _squeezed_units(var)
    if _attr(var, "standard_name") == "air_pressure" or _attr(var, "axis") == "z" or units in PRESSURE_UNITS:
        return PRESSURE_UNITS.get(units)
    return None


def _role(var) -> str | None:
    standard, axis, units = _attr(var, "standard_name"), _attr(var, "axis"), _attr(var, "units")
    if standard == "time" or axis == "t" or " since " in units:
        return "time"
    if standard == "latitude" or axis == "y" or units in LAT_UNITS:
        return "lat"
    if standard == "longitude" or axis == "x" or units in LON_UNITS:
        return "lon"
    if _pressure_scale(var) is not None:
        return "level"
    return None


@contextlib.contextmanager
def opened(path: Path):
    """netCDF4.Dataset whose low-level failures (truncated, not netCDF) become one-line MegageoErrors."""
    import netCDF4

    if not path.is_file():
        raise MegageoError(f"{path}: no such file")
    try:
        required = required_bytes(path)
    except EOFError:
        raise MegageoError(f"{path}: netCDF3 header cut short, file truncated") from None
    if required is not None and path.stat().st_size < required:
        raise MegageoError(f"{path}: truncated: {path.stat().st_size} bytes, its header needs {required}")
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as error:
        raise MegageoError(f"{path}: not a readable netCDF file, truncated or another format? ({error})") from None
    try:
        with ds:
            yield ds
    except (OSError, RuntimeError, IndexError) as error:
        raise MegageoError(f"{path}: cannot read data, file truncated or corrupt? ({error})") from None


def _find_height_variable(ds, path: Path):
    found = [(var, scale) for var in ds.variables.values() if var.ndim >= 3 and (scale := _height_scale(var))]
    if not found:
        raise MegageoError(f"{path}: no geopotential-height variable (variables: {', '.join(ds.variables)})")
    if len(found) > 1:
        raise MegageoError(f"{path}: several geopotential-height variables: {', '.join(v.name for v, _ in found)}")
    return found[0]


def _scalar_level(ds, var, path: Path) -> np.ndarray:
    """A single-level field names its pressure in a scalar coordinate (CF `coordinates` attribute)."""
    for name in str(getattr(var, "coordinates", "")).split():
        coord = ds.variables.get(name)
        if coord is not None and coord.size == 1 and (scale := _pressure_scale(coord)) is not None:
            return np.asarray(coord[:], dtype=np.float64).reshape(1) * scale
    raise MegageoError(f"{path}: '{var.name}' has no pressure-level dimension or scalar pressure coordinate")


def scan(path: Path) -> NcSource:
    """Metadata of one file: its height variable, coordinates and time axis (decoded with its own calendar)."""
    import cftime

    with opened(path) as ds:
        var, per_metre = _find_height_variable(ds, path)
        roles, coords = {}, {}
        for dim in var.dimensions:
            coord = ds.variables.get(dim)
            role = _role(coord) if coord is not None else None
            if role is None or role in coords:
                raise MegageoError(f"{path}: cannot tell what dimension '{dim}' of '{var.name}' is (no CF metadata)")
            roles[dim], coords[role] = role, coord
        missing = {"time", "lat", "lon"} - set(coords)
        if missing:
            raise MegageoError(f"{path}: '{var.name}' lacks a {'/'.join(sorted(missing))} dimension")
        time_var = coords["time"]
        calendar = str(getattr(time_var, "calendar", "standard"))
        try:
            dates = cftime.num2date(np.asarray(time_var[:], dtype=np.float64), time_var.units, calendar)
        except (AttributeError, ValueError) as error:
            raise MegageoError(f"{path}: cannot decode time '{time_var.name}' ({error})") from None
        time = np.asarray(cftime.date2num(dates, TIME_UNITS, calendar), dtype=np.float64).reshape(-1)
        if "level" in coords:
            levels = np.asarray(coords["level"][:], dtype=np.float64) * _pressure_scale(coords["level"])
        else:
            levels = _scalar_level(ds, var, path)
        lat = np.asarray(coords["lat"][:], dtype=np.float64)
        flip = lat.size > 1 and lat[0] < lat[-1]
        return NcSource(
            path=path,
            variable=var.name,
            dims=tuple(var.dimensions),
            roles=roles,
            per_metre=per_metre,
            time=time,
            calendar=calendar,
            levels=levels,
            lat=lat[::-1].copy() if flip else lat,
            lon=np.asarray(coords["lon"][:], dtype=np.float64),
            flip_lat=flip,
        )


def _fill_values(var, raw: np.ndarray) -> list:
    """Values that mean 'missing': _FillValue, missing_value, and netCDF's default fill for unset floats."""
    import netCDF4

    fills = [getattr(var, name) for name in ("_FillValue", "missing_value") if hasattr(var, name)]
    if not hasattr(var, "_FillValue") and raw.dtype.kind == "f":
        fills.append(netCDF4.default_fillvals[raw.dtype.str[1:]])
    return [value for fill in fills for value in np.atleast_1d(fill)]


def _unpack(var, raw: np.ndarray, per_metre: float) -> np.ndarray:
    scale = float(getattr(var, "scale_factor", 1.0))
    offset = float(getattr(var, "add_offset", 0.0))
    if raw.dtype == np.float32 and scale == 1.0 and offset == 0.0 and per_metre == 1.0:
        return raw
    return ((offset + raw.astype(np.float64) * scale) / per_metre).astype(np.float32)


def iter_frames(source: NcSource, levels: Sequence[float], chunk: int = 64) -> Iterator[np.ndarray]:
    """Blocks of up to `chunk` frames [n, C, H, W] float32 for the given levels, in file order.

    Streaming keeps memory at one block even for 17-level NCEP years (1460 x 17 x 73 x 144).
    """
    import cftime

    channels = [source.level_index(level) for level in levels]
    with opened(source.path) as ds:
        var = ds.variables[source.variable]
        var.set_auto_maskandscale(False)
        kept = [dim for dim in source.dims if source.roles[dim] != "level"]
        to_tyx = [kept.index(dim) for role in ("time", "lat", "lon") for dim in kept if source.roles[dim] == role]
        for start in range(0, source.time.size, chunk):
            stop = min(start + chunk, source.time.size)
            planes = []
            for channel in channels:
                index = tuple(
                    {"time": slice(start, stop), "level": channel}.get(source.roles[dim], slice(None))
                    for dim in source.dims
                )
                planes.append(np.asarray(var[index]).transpose(to_tyx))
            raw = np.stack(planes, axis=1)
            bad = np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(raw.shape, bool)
            for fill in _fill_values(var, raw):
                bad |= raw == fill
            if bad.any():
                t, c = np.argwhere(bad)[0][:2]
                date = cftime.num2date(source.time[start + t], TIME_UNITS, source.calendar)
                raise MegageoError(
                    f"{source.path}: missing or NaN values in '{source.variable}' at time index {start + t} "
                    f"({date}), level {source.levels[channels[c]]:g} hPa"
                )
            block = _unpack(var, raw, source.per_metre)
            yield np.ascontiguousarray(block[:, :, ::-1]) if source.flip_lat else block
