"""Read atmospheric fields from CF netCDF files: NCEP/NCAR Reanalysis 1 `hgt.YYYY.nc`, `uwnd.YYYY.nc`, ... and others.

Variables and coordinates are found by CF metadata (standard_name, units, axis, long_name), so PSL's
`hgt(time, level, lat, lon)` and e.g. `z(time, pressure, latitude, longitude)` read alike. Where metadata is
missing, conventional names stand in (hgt/HGT/zg/gh and ERA5's z; level/lev/plev/isobaric/pressure_level,
lat/latitude, lon/longitude, time/valid_time) and `--var` names the variable outright. A height variable without
units takes its standard name's canonical units only when its magnitude agrees (the standard atmosphere's height
at its highest level, or g0 times it), so geopotential in m² s⁻² is never read as metres.

The other variables (`megageo.data.variables`: winds, temperature) are found the same way, by standard name,
then conventional name, and converted into the store's units (knots to m s⁻¹, °C to K); one without units is read
in the store's units only if its mean is plausible for them.

Values come back as float32 in the store's units (geopotential height in metres), (time, level, lat, lon), latitude
north to south,
longitude 0..360 ascending. Packed int16 files are unpacked in float64 (`add_offset + packed * scale_factor`) and
rounded to float32 once; CF `geopotential` (m² s⁻², e.g. ERA5's `z`) is divided by g0 = 9.80665 m s⁻². Times
keep the file's calendar (360_day, noleap, ...), re-counted from NCEP's origin; a time origin in year 1 works.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from megageo.data.netcdf3 import required_bytes
from megageo.data.variables import VARIABLES, Variable
from megageo.errors import MegageoError

G0 = 9.80665  # standard gravity (m s-2), WMO's conversion from geopotential to geopotential height
TIME_UNITS = "hours since 1800-01-01 00:00:00"  # NCEP R1's own time origin, kept in the store

HEIGHT_UNITS = {"m", "gpm", "meter", "meters", "metre", "metres"}
GEOPOTENTIAL_UNITS = {"m2s-2", "m2/s2"}
PRESSURE_UNITS = {"hpa": 1.0, "mbar": 1.0, "millibar": 1.0, "millibars": 1.0, "mb": 1.0, "pa": 0.01}
LAT_UNITS = {"degrees_north", "degree_north", "degrees_n", "degree_n"}
LON_UNITS = {"degrees_east", "degree_east", "degrees_e", "degree_e"}

# Conventional names, used only where a variable's metadata says nothing (compared lower-case).
EITHER_NAMES = {"z"}  # ERA5's geopotential, others' height: its units, else its magnitude, decide
HEIGHT_NAMES = VARIABLES["hgt"].names - EITHER_NAMES
COORDINATE_NAMES = {
    "time": {"time", "valid_time"},
    "level": {"level", "lev", "plev", "pressure", "pressure_level", "isobaric", "isobaricinhpa"},
    "lat": {"lat", "latitude"},
    "lon": {"lon", "longitude"},
}


@dataclass(frozen=True)
class NcSource:
    """What one file holds, learned from its metadata before any data is read."""

    path: Path
    variable: str  # the variable's name in the file
    dims: tuple[str, ...]  # the variable's dimensions, in file order
    roles: dict[str, str]  # dimension name -> "time" | "level" | "lat" | "lon"
    per_unit: float  # file units per store unit: 1, g0 for geopotential, 1/0.514 for knots; store = x/per_unit + offset
    time: np.ndarray  # float64 hours since 1800-01-01 in `calendar`
    calendar: str
    levels: np.ndarray  # hPa, file order
    lat: np.ndarray  # north to south
    lon: np.ndarray  # 0..360 ascending
    flip_lat: bool  # file stores latitude south to north
    lon_order: np.ndarray | None = None  # file columns in stored order, when the file's longitudes are not 0..360
    kind: str = "hgt"  # which of `megageo.data.variables.VARIABLES` it is
    offset: float = 0.0  # added after scaling: 273.15 for temperatures in °C

    def level_index(self, level: float) -> int:
        matches = np.flatnonzero(np.isclose(self.levels, level, atol=1e-3))
        if matches.size == 0:
            have = ", ".join(f"{p:g}" for p in self.levels)
            raise MegageoError(f"{self.path}: level {level:g} hPa absent from '{self.variable}' (levels: {have} hPa)")
        return int(matches[0])


def _raw_attr(var, name: str) -> str:
    """An attribute as written (for messages), '' when the file does not have it."""
    return str(getattr(var, name, "")).strip()


def _attr(var, name: str) -> str:
    return _raw_attr(var, name).lower()


def _squeezed_units(var) -> str:
    return _attr(var, "units").replace(" ", "").replace("**", "").replace("^", "").replace("+", "")


def _declared_kind(var) -> tuple[float | None, bool]:
    """(units per metre the variable's description implies, whether it is a geopotential(-height) variable at all):
    1 for geopotential height, g0 for geopotential, None when only its conventional name (`z`) makes it one."""
    standard = _attr(var, "standard_name")
    described = f"{_attr(var, 'long_name')} {_attr(var, 'var_desc')}"
    if standard == "geopotential_height" or (not standard and "geopotential height" in described):
        return 1.0, True
    if standard == "geopotential" or (not standard and "geopotential" in described):
        return G0, True
    return None, False


def _named_kind(var) -> tuple[float | None, bool]:
    """The same judged from the variable's conventional name alone (NCEP hgt/HGT, CMIP zg, GRIB gh; ERA5's z)."""
    name = var.name.lower()
    return (1.0, True) if name in HEIGHT_NAMES else (None, name in EITHER_NAMES)


def _units_scale(var, kind: float | None, path: Path) -> float | None:
    """Units per metre from the units attribute, checked against what the description says; None if no units."""
    units = _squeezed_units(var)
    if not units:
        return None
    scale = 1.0 if units in HEIGHT_UNITS else G0 if units in GEOPOTENTIAL_UNITS else None
    written = _raw_attr(var, "units")
    if kind == 1.0 and scale != 1.0:
        raise MegageoError(f"{path}: geopotential height '{var.name}' has units '{written}', expected metres")
    if kind == G0 and scale != G0:
        raise MegageoError(f"{path}: geopotential '{var.name}' has units '{written}', expected m2 s-2")
    if scale is None:
        raise MegageoError(f"{path}: '{var.name}' has units '{written}', neither metres nor m2 s-2")
    return scale


def standard_atmosphere_height(pressure_hpa: float) -> float:
    """ICAO standard atmosphere height (m) of a pressure level: troposphere to 226.32 hPa, isothermal above."""
    if pressure_hpa >= 226.32:
        return 288.15 / 0.0065 * (1.0 - (pressure_hpa / 1013.25) ** 0.190263)
    return 11000.0 + 287.05287 * 216.65 / G0 * np.log(226.32 / pressure_hpa)


def _pressure_scale(var) -> float | None:
    units = _squeezed_units(var)
    if _attr(var, "standard_name") == "air_pressure" or _attr(var, "axis") == "z" or units in PRESSURE_UNITS:
        return PRESSURE_UNITS.get(units)
    return None


def _role(var) -> str | None:
    """What a coordinate is, from its CF metadata, else from its conventional name when it has no units."""
    standard, axis, units = _attr(var, "standard_name"), _attr(var, "axis"), _attr(var, "units")
    if standard == "time" or axis == "t" or " since " in units:
        return "time"
    if standard == "latitude" or axis == "y" or units in LAT_UNITS:
        return "lat"
    if standard == "longitude" or axis == "x" or units in LON_UNITS:
        return "lon"
    if _pressure_scale(var) is not None:
        return "level"
    name = var.name.lower()
    role = next((role for role, names in COORDINATE_NAMES.items() if name in names), None)
    if role is None and name.startswith("isobaric"):
        role = "level"
    if role == "level" and units:  # units that are not a pressure's (K, sigma): some other vertical coordinate
        return None
    if role in ("lat", "lon") and units not in ("", "degrees", "degree"):
        return None
    return role


def _level_scale(var) -> float:
    """hPa per unit of a pressure coordinate; one known only by its name says Pa by its magnitude (> 1100)."""
    scale = _pressure_scale(var)
    if scale is not None:
        return scale
    return 0.01 if np.nanmax(np.abs(np.asarray(var[:], dtype=np.float64))) > 1100 else 1.0


def unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be read as a file, in words a user can act on (archives on HPC systems are full of
    links to migrated or moved files); None if it can."""
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link to {os.readlink(path)}"
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "a directory, not a netCDF file"
    if not path.is_file():
        return "not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


@contextlib.contextmanager
def opened(path: Path):
    """netCDF4.Dataset whose low-level failures (truncated, not netCDF) become one-line MegageoErrors."""
    import netCDF4

    reason = unreadable_reason(path)
    if reason is not None:
        raise MegageoError(f"{path}: {reason}")
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


def _find_height_variable(ds, path: Path, name: str | None = None):
    """The geopotential(-height) variable, and the units per metre its metadata imply (None: decide by magnitude).

    Found by CF metadata (standard_name, long_name); failing that, by conventional name; `name` (--var) picks one."""
    if name is not None:
        var = ds.variables.get(name)
        if var is None:
            raise MegageoError(f"{path}: no variable '{name}' (variables: {', '.join(ds.variables)})")
        kind, described = _declared_kind(var)
        kind = kind if described else _named_kind(var)[0]
        return var, kind, _units_scale(var, kind, path)
    for judge in (_declared_kind, _named_kind):
        found = [(var, kind) for var in ds.variables.values() if var.ndim >= 3 for kind, ok in [judge(var)] if ok]
        if len(found) > 1:
            names = ", ".join(var.name for var, _ in found)
            raise MegageoError(f"{path}: several geopotential-height variables: {names} (name one with --var)")
        if found:
            var, kind = found[0]
            return var, kind, _units_scale(var, kind, path)
    return None


def _find_field_variable(ds, path: Path, wanted: Variable, name: str | None = None):
    """A non-height variable, and (per_unit, offset) from its units (None: no units), or None if the file has none.
    Found by standard name, then by conventional name; `name` (--var) picks one."""
    if name is not None:
        var = ds.variables.get(name)
        if var is None:
            raise MegageoError(f"{path}: no variable '{name}' (variables: {', '.join(ds.variables)})")
        return var, _field_units(var, wanted, path)
    by_standard = [v for v in ds.variables.values() if v.ndim >= 3 and _attr(v, "standard_name") in wanted.standard_names]
    by_name = [v for v in ds.variables.values()
               if v.ndim >= 3 and not _attr(v, "standard_name") and v.name.lower() in wanted.names]
    for found in (by_standard, by_name):
        if len(found) > 1:
            names = ", ".join(var.name for var in found)
            raise MegageoError(f"{path}: several {wanted.long_name} variables: {names} (name one with --var)")
        if found:
            return found[0], _field_units(found[0], wanted, path)
    return None


def _field_units(var, wanted: Variable, path: Path) -> tuple[float, float] | None:
    """(file units per store unit, offset) from the units attribute; None when it has none."""
    units = _squeezed_units(var)
    if not units:
        return None
    if units not in wanted.unit_spellings:
        raise MegageoError(f"{path}: {wanted.long_name} '{var.name}' has units '{_raw_attr(var, 'units')}', "
                           f"expected {wanted.units}")
    scale, offset = wanted.unit_spellings[units]
    return 1.0 / scale, offset


def find_variable(ds, path: Path, kind: str, name: str | None = None):
    """(variable, height kind for the magnitude check, (per_unit, offset) or None) for `kind`, or None if absent."""
    if kind == "hgt":
        found = _find_height_variable(ds, path, name)
        if found is None:
            return None
        var, height_kind, per_metre = found
        return var, height_kind, None if per_metre is None else (per_metre, 0.0)
    found = _find_field_variable(ds, path, VARIABLES[kind], name)
    return None if found is None else (found[0], None, found[1])


def _absent(ds, path: Path, kind: str) -> MegageoError:
    names = ", ".join(ds.variables)
    if kind == "hgt":
        return MegageoError(f"{path}: no geopotential-height variable (variables: {names}); name it with --var")
    return MegageoError(f"{path}: no {VARIABLES[kind].long_name} variable (variables: {names}); name it with --var")


def _scale_by_magnitude(var, roles: dict[str, str], levels: np.ndarray, kind: float | None, path: Path) -> float:
    """Units per metre of a variable without units, from its values on its highest level at the first time:
    within ±50 % of the standard atmosphere's height there it is metres, within ±50 % of g0 times that it is
    m2 s-2 (the two bands are 3x apart), and anything else, or a disagreement with its name, is refused."""
    level = int(np.argmin(levels))
    pressure = float(levels[level])
    described = {1.0: "is named geopotential height but has", G0: "is named geopotential but has", None: "has"}[kind]
    if pressure > 925:
        raise MegageoError(f"{path}: '{var.name}' {described} no units, and its highest level ({pressure:g} hPa) is "
                           "too near the ground to tell metres from m2 s-2 by magnitude: set its units attribute")
    index = tuple({"time": 0, "level": level}.get(roles[dim], slice(None)) for dim in var.dimensions)
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[index])
    valid = ~np.isin(raw, _fill_values(var, raw))
    if raw.dtype.kind == "f":
        valid &= ~np.isnan(raw)
    mean = float(_unpack(var, raw[valid], 1.0).astype(np.float64).mean()) if valid.any() else float("nan")
    height = standard_atmosphere_height(pressure)
    looks = 1.0 if 0.5 <= mean / height <= 1.5 else G0 if 0.5 <= mean / (G0 * height) <= 1.5 else None
    if looks is not None and kind in (None, looks):
        return looks
    seen = {1.0: "are geopotential height in m", G0: "are geopotential in m2 s-2",
            None: "are neither geopotential height in m nor geopotential in m2 s-2"}[looks]
    raise MegageoError(f"{path}: '{var.name}' {described} no units, and its values (mean {mean:.1f} at "
                       f"{pressure:g} hPa, time index 0) {seen} (a height there is about {height:.0f} m): "
                       "set its units attribute")


def _field_by_magnitude(var, roles: dict[str, str], wanted: Variable, path: Path) -> tuple[float, float]:
    """A unit-less non-height field is taken in the store's units only if its mean at the first time is plausible."""
    index = tuple(0 if roles[dim] == "time" else slice(None) for dim in var.dimensions)
    var.set_auto_maskandscale(False)
    raw = np.asarray(var[index])
    valid = ~np.isin(raw, _fill_values(var, raw))
    if raw.dtype.kind == "f":
        valid &= ~np.isnan(raw)
    mean = float(_unpack(var, raw[valid], 1.0).astype(np.float64).mean()) if valid.any() else float("nan")
    low, high = wanted.plausible
    if low <= mean <= high:
        return 1.0, 0.0
    raise MegageoError(f"{path}: {wanted.long_name} '{var.name}' has no units, and its mean at time index 0 "
                       f"({mean:.1f}) is not plausible in {wanted.units}: set its units attribute")


def _scalar_level(ds, var, path: Path) -> np.ndarray:
    """A single-level field names its pressure in a scalar coordinate (CF `coordinates` attribute)."""
    for name in str(getattr(var, "coordinates", "")).split():
        coord = ds.variables.get(name)
        if coord is not None and coord.size == 1 and (scale := _pressure_scale(coord)) is not None:
            return np.asarray(coord[:], dtype=np.float64).reshape(1) * scale
    raise MegageoError(f"{path}: '{var.name}' has no pressure-level dimension or scalar pressure coordinate")


def scan(path: Path, variable: str | None = None, kind: str = "hgt") -> NcSource:
    """Metadata of one file: its `kind` variable (or the one named `variable`), coordinates and time axis (decoded
    with its own calendar); longitudes become 0..360 ascending, latitudes north to south."""
    (source,) = scan_kinds(path, (kind,), variable).values()
    return source


def scan_kinds(path: Path, kinds: Sequence[str], variable: str | None = None) -> dict[str, NcSource]:
    """What `scan` learns, for each of `kinds` the file holds (a file may hold several, like ERA5's, or one, like
    NCEP's). A file holding none of them is refused; asked for one kind, the message names it."""
    with opened(path) as ds:
        found = {kind: hit for kind in kinds if (hit := find_variable(ds, path, kind, variable)) is not None}
        if not found:
            if len(kinds) == 1:
                raise _absent(ds, path, kinds[0])
            raise MegageoError(f"{path}: holds none of the variables asked for ({', '.join(kinds)}); its "
                               f"variables: {', '.join(ds.variables)}")
        return {kind: _describe_variable(ds, path, kind, *hit) for kind, hit in found.items()}


def _describe_variable(ds, path: Path, kind: str, var, height_kind: float | None,
                       units: tuple[float, float] | None) -> NcSource:
    import cftime

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
    if not _attr(time_var, "units"):
        raise MegageoError(f"{path}: time coordinate '{time_var.name}' has no units (like 'hours since "
                           "1800-01-01'): cannot tell when its frames are")
    calendar = _attr(time_var, "calendar") or "standard"
    try:
        dates = cftime.num2date(np.asarray(time_var[:], dtype=np.float64), _raw_attr(time_var, "units"), calendar)
        time = np.asarray(cftime.date2num(dates, TIME_UNITS, calendar), dtype=np.float64).reshape(-1)
    except (AttributeError, ValueError, TypeError) as error:
        raise MegageoError(f"{path}: cannot decode time '{time_var.name}' ({error})") from None
    if "level" in coords:
        levels = np.asarray(coords["level"][:], dtype=np.float64) * _level_scale(coords["level"])
    else:
        levels = _scalar_level(ds, var, path)
    if units is None and kind == "hgt":
        units = (_scale_by_magnitude(var, roles, levels, height_kind, path), 0.0)
    elif units is None:
        units = _field_by_magnitude(var, roles, VARIABLES[kind], path)
    lat = np.asarray(coords["lat"][:], dtype=np.float64)
    flip = lat.size > 1 and lat[0] < lat[-1]
    lon, lon_order = _longitudes_0_to_360(np.asarray(coords["lon"][:], dtype=np.float64), path)
    return NcSource(
        path=path,
        variable=var.name,
        dims=tuple(var.dimensions),
        roles=roles,
        per_unit=units[0],
        time=time,
        calendar=calendar,
        levels=levels,
        lat=lat[::-1].copy() if flip else lat,
        lon=lon,
        flip_lat=flip,
        lon_order=lon_order,
        kind=kind,
        offset=units[1],
    )


def _longitudes_0_to_360(lon: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Longitudes in [0, 360) ascending, as NCEP has them, and the column order that gets there (None: as is)."""
    wrapped = np.mod(lon, 360.0)
    order = np.argsort(wrapped, kind="stable")
    if np.any(np.diff(wrapped[order]) == 0):
        raise MegageoError(f"{path}: longitudes repeat modulo 360°: {lon[0]:g}..{lon[-1]:g}")
    if np.array_equal(order, np.arange(lon.size)) and np.array_equal(wrapped, lon):
        return lon, None
    return wrapped[order], order


def _fill_values(var, raw: np.ndarray) -> list:
    """Values that mean 'missing': _FillValue, missing_value, and netCDF's default fill for unset floats."""
    import netCDF4

    fills = [getattr(var, name) for name in ("_FillValue", "missing_value") if hasattr(var, name)]
    if not hasattr(var, "_FillValue") and raw.dtype.kind == "f":
        fills.append(netCDF4.default_fillvals[raw.dtype.str[1:]])
    return [value for fill in fills for value in np.atleast_1d(fill)]


def _unpack(var, raw: np.ndarray, per_unit: float, shift: float = 0.0) -> np.ndarray:
    """Packed or float values in the store's units: (add_offset + x·scale_factor) / per_unit + shift, in float64,
    rounded to float32 once."""
    scale = float(getattr(var, "scale_factor", 1.0))
    offset = float(getattr(var, "add_offset", 0.0))
    if raw.dtype == np.float32 and scale == 1.0 and offset == 0.0 and per_unit == 1.0 and shift == 0.0:
        return raw
    return ((offset + raw.astype(np.float64) * scale) / per_unit + shift).astype(np.float32)


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
            block = _unpack(var, raw, source.per_unit, source.offset)
            if source.flip_lat:
                block = block[:, :, ::-1]
            if source.lon_order is not None:
                block = block[..., source.lon_order]
            yield np.ascontiguousarray(block)
