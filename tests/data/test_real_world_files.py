"""Files as other archives write them: CF attributes missing or unusual, only conventional names, both fill
attributes, time origins in year 1 and non-standard calendars, either latitude order, longitudes from -180,
seasonal means. Each either ingests to exactly the values written, or stops with one line that says why.

Oracles: values are what the test wrote (metres, or geopotential / 9.80665); times are computed here with
plain calendar arithmetic (or NCEP's documented 17067072 h = 1948-01-01 in "hours since 1-1-1"), not by cftime.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from megageo.cli import main
from megageo.data.build import build_store
from megageo.data.store import Store
from megageo.errors import MegageoError

G0 = 9.80665
LAT = np.array([60.0, 30.0, 0.0, -30.0, -60.0])
LON = np.arange(0.0, 360.0, 45.0)
LEVELS = np.array([850.0, 500.0])
HOURS_1979 = (dt.datetime(1979, 1, 1) - dt.datetime(1800, 1, 1)).total_seconds() / 3600  # 1569072


def heights(frames: int = 3, seed: int = 0) -> np.ndarray:
    """[T, level, lat, lon] metres near each level's mean, in float32."""
    rng = np.random.default_rng(seed)
    base = np.array([1457.0, 5510.0])[None, :, None, None]
    return (base + 100.0 * rng.standard_normal((frames, 2, LAT.size, LON.size))).astype(np.float32)


def write(path: Path, data: np.ndarray, variable: tuple[str, dict] = ("hgt", {"units": "m"}),
          coords: dict[str, tuple[np.ndarray, dict]] | None = None, fill_value=None) -> Path:
    """One variable over the given coordinates (name -> (values, attributes)), in that dimension order."""
    if coords is None:
        coords = {"time": (HOURS_1979 + 6.0 * np.arange(data.shape[0]), {"units": "hours since 1800-01-01"}),
                  "level": (LEVELS, {"units": "hPa"}), "lat": (LAT, {"units": "degrees_north"}),
                  "lon": (LON, {"units": "degrees_east"})}
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        for name, (values, attrs) in coords.items():
            ds.createDimension(name, None if name == list(coords)[0] else len(values))
            ds.createVariable(name, "f8", (name,)).setncatts(attrs)
            ds[name][:] = values
        name, attrs = variable
        var = ds.createVariable(name, data.dtype, tuple(coords), fill_value=fill_value)
        var.setncatts(attrs)
        var.set_auto_maskandscale(False)
        var[:] = data
    return path


def build(tmp_path: Path, *sources: Path, levels=(850, 500), var: str | None = None) -> Store:
    kwargs = {} if var is None else {"variable": var}
    return Store(build_store(list(sources), tmp_path / "s.h5", levels=levels, **kwargs))


def assert_refused(tmp_path: Path, source: Path, message: str, **kwargs) -> None:
    with pytest.raises(MegageoError) as error:
        build(tmp_path, source, **kwargs)
    assert str(error.value) == message
    assert not (tmp_path / "s.h5").exists() and [p.name for p in tmp_path.iterdir()] == [source.name]


# --- units missing where the standard name fixes them; magnitudes checked -------------------------------------


def test_height_without_units_is_in_metres(tmp_path) -> None:
    """The issue's file: standard_name geopotential_height and no units (it crashed in the error message)."""
    values = heights()
    source = write(tmp_path / "in.nc", values, ("z", {"standard_name": "geopotential_height"}))
    np.testing.assert_array_equal(build(tmp_path, source).read(0, 3), values)


def test_geopotential_without_units_is_in_m2_s2(tmp_path) -> None:
    values = heights()
    source = write(tmp_path / "in.nc", (values.astype(np.float64) * G0).astype(np.float32),
                   ("z", {"standard_name": "geopotential"}))
    expected = ((values.astype(np.float64) * G0).astype(np.float32).astype(np.float64) / G0).astype(np.float32)
    np.testing.assert_array_equal(build(tmp_path, source).read(0, 3), expected)


def mean_at_500(values: np.ndarray) -> str:
    """What the message quotes: the mean of the first frame on the highest level (500 hPa here)."""
    return f"{values[0, 1].astype(np.float64).mean():.1f}"


def test_height_without_units_holding_geopotential_is_refused(tmp_path) -> None:
    """Never take m2 s-2 for metres: 500 hPa values near 54,000 are geopotential whatever the name says (the ICAO
    standard atmosphere puts 500 hPa at 5574 m)."""
    values = heights() * np.float32(G0)
    source = write(tmp_path / "in.nc", values, ("z", {"standard_name": "geopotential_height"}))
    assert_refused(tmp_path, source, f"{source}: 'z' is named geopotential height but has no units, and its values "
                   f"(mean {mean_at_500(values)} at 500 hPa, time index 0) are geopotential in m2 s-2 (a height "
                   "there is about 5574 m): set its units attribute")


def test_geopotential_without_units_holding_metres_is_refused(tmp_path) -> None:
    source = write(tmp_path / "in.nc", heights(), ("z", {"standard_name": "geopotential"}))
    assert_refused(tmp_path, source, f"{source}: 'z' is named geopotential but has no units, and its values "
                   f"(mean {mean_at_500(heights())} at 500 hPa, time index 0) are geopotential height in m (a height "
                   "there is about 5574 m): set its units attribute")


def test_units_that_contradict_the_standard_name_are_refused(tmp_path) -> None:
    source = write(tmp_path / "in.nc", heights(), ("z", {"standard_name": "geopotential_height", "units": "K"}))
    assert_refused(tmp_path, source, f"{source}: geopotential height 'z' has units 'K', expected metres")


def test_unitless_values_that_fit_neither_are_refused(tmp_path) -> None:
    """Decametres (55 at 500 hPa) are neither: refused rather than guessed."""
    values = heights() / np.float32(100.0)
    source = write(tmp_path / "in.nc", values, ("z", {}), coords=bare_coords(3))
    assert_refused(tmp_path, source, f"{source}: 'z' has no units, and its values (mean {mean_at_500(values)} at "
                   "500 hPa, time index 0) are neither geopotential height in m nor geopotential in m2 s-2 (a "
                   "height there is about 5574 m): set its units attribute")


def test_unitless_file_with_only_near_ground_levels_is_refused(tmp_path) -> None:
    """At 1000 hPa heights hover around 100 m and change sign: magnitude cannot tell m from m2 s-2 there."""
    coords = bare_coords(3, level=("level", np.array([1000.0, 925.5])))
    source = write(tmp_path / "in.nc", heights(), ("hgt", {}), coords=coords)
    assert_refused(tmp_path, source, f"{source}: 'hgt' is named geopotential height but has no units, and its "
                   "highest level (925.5 hPa) is too near the ground to tell metres from m2 s-2 by magnitude: set "
                   "its units attribute", levels=(1000,))


# --- only conventional names ------------------------------------------------------------------------------------


def bare_coords(frames: int, level=("level", LEVELS), lat="lat", lon="lon") -> dict:
    """Coordinates with their conventional names and no attributes at all (time keeps its units: nothing
    else says when the frames are)."""
    return {"time": (HOURS_1979 + 6.0 * np.arange(frames), {"units": "hours since 1800-01-01"}),
            level[0]: (level[1], {}), lat: (LAT, {}), lon: (LON, {})}


@pytest.mark.parametrize("name", ["hgt", "HGT", "z", "zg"])
def test_variable_known_only_by_its_name_and_units(tmp_path, name: str) -> None:
    values = heights()
    source = write(tmp_path / "in.nc", values, (name, {"units": "m"}), coords=bare_coords(3))
    np.testing.assert_array_equal(build(tmp_path, source).read(0, 3), values)


def test_z_without_units_is_told_apart_by_magnitude(tmp_path) -> None:
    """ERA5's `z` is geopotential: with no attribute at all its magnitude says so, and it is divided by g0."""
    geopotential = (heights().astype(np.float64) * G0).astype(np.float32)
    source = write(tmp_path / "in.nc", geopotential, ("z", {}), coords=bare_coords(3))
    expected = (geopotential.astype(np.float64) / G0).astype(np.float32)
    np.testing.assert_array_equal(build(tmp_path, source).read(0, 3), expected)


@pytest.mark.parametrize(("name", "values"), [("level", LEVELS), ("lev", LEVELS), ("plev", LEVELS * 100),
                                              ("isobaric", LEVELS), ("isobaricInhPa", LEVELS),
                                              ("pressure_level", LEVELS)])
def test_level_dimension_known_only_by_its_name(tmp_path, name: str, values: np.ndarray) -> None:
    """No units, no axis: hPa, or Pa when the values say so (CMIP's plev is 85000, 50000)."""
    data = heights()
    source = write(tmp_path / "in.nc", data, coords=bare_coords(3, level=(name, values)))
    store = build(tmp_path, source, levels=(500,))
    np.testing.assert_array_equal(store.level, [500.0])
    np.testing.assert_array_equal(store.read(0, 3), data[:, [1]])


def test_latitude_and_longitude_known_only_by_their_names(tmp_path) -> None:
    data = heights()
    source = write(tmp_path / "in.nc", data, coords=bare_coords(3, lat="latitude", lon="longitude"))
    store = build(tmp_path, source)
    np.testing.assert_array_equal(store.lat, LAT)
    np.testing.assert_array_equal(store.lon, LON)
    np.testing.assert_array_equal(store.read(0, 3), data)


def test_time_without_units_is_refused(tmp_path) -> None:
    coords = bare_coords(3)
    coords["time"] = (np.arange(3.0), {})
    source = write(tmp_path / "in.nc", heights(), coords=coords)
    assert_refused(tmp_path, source, f"{source}: time coordinate 'time' has no units (like 'hours since "
                   "1800-01-01'): cannot tell when its frames are")


# --- --var names the variable -------------------------------------------------------------------------------


def two_heights(path: Path) -> Path:
    """A file with the field and its ensemble spread, both described as geopotential height."""
    write(path, heights(), ("hgt", {"units": "m", "long_name": "Geopotential height"}))
    with netCDF4.Dataset(path, "a") as ds:
        spread = ds.createVariable("hgt_spread", "f4", ("time", "level", "lat", "lon"))
        spread.setncatts({"units": "m", "long_name": "Geopotential height spread"})
        spread[:] = np.full((3, 2, LAT.size, LON.size), 20.0, np.float32)
    return path


def test_two_candidates_need_var(tmp_path) -> None:
    source = two_heights(tmp_path / "in.nc")
    assert_refused(tmp_path, source, f"{source}: several geopotential-height variables: hgt, hgt_spread "
                   "(name one with --var)")


def test_var_picks_the_variable(tmp_path, capsys) -> None:
    source = two_heights(tmp_path / "in.nc")
    np.testing.assert_array_equal(build(tmp_path, source, var="hgt").read(0, 3), heights())
    out = tmp_path / "cli.h5"
    assert main(["data", "build", "--src", str(source), "--out", str(out), "--var", "hgt"]) == 0
    np.testing.assert_array_equal(Store(out).read(0, 3)[:, 0], heights()[:, 1])


def test_var_that_is_not_there_is_one_line(tmp_path, capsys) -> None:
    source = write(tmp_path / "in.nc", heights())
    out = tmp_path / "s.h5"
    assert main(["data", "build", "--src", str(source), "--out", str(out), "--var", "gh"]) == 2
    assert capsys.readouterr().err == (f"megageo: error: {source}: no variable 'gh' (variables: time, level, lat, "
                                       "lon, hgt)\n")
    assert not out.exists()


# --- fill values ---------------------------------------------------------------------------------------------


def both_fills(path: Path, hole: float | None) -> Path:
    values = heights()
    if hole is not None:
        values[1, 1, 2, 3] = hole
    write(path, values, ("hgt", {"units": "m", "missing_value": np.float32(-9999.0)}), fill_value=np.float32(1e20))
    return path


def test_missing_value_and_fill_value_both_present(tmp_path) -> None:
    np.testing.assert_array_equal(build(tmp_path, both_fills(tmp_path / "in.nc", None)).read(0, 3), heights())


@pytest.mark.parametrize("hole", [-9999.0, 1e20])
def test_either_fill_inside_the_data_is_refused(tmp_path, hole: float) -> None:
    source = both_fills(tmp_path / "in.nc", hole)
    assert_refused(tmp_path, source, f"{source}: missing or NaN values in 'hgt' at time index 1 "
                   "(1979-01-01 06:00:00), level 500 hPa")


# --- time origins and calendars ------------------------------------------------------------------------------


def with_time(tmp_path: Path, values: np.ndarray, attrs: dict) -> Path:
    coords = bare_coords(len(values))
    coords["time"] = (values, attrs)
    return write(tmp_path / "in.nc", heights(len(values)), ("hgt", {"units": "m"}), coords=coords)


def test_time_since_year_1(tmp_path) -> None:
    """NCEP's older files count hours since 1-1-1 (mixed Julian/Gregorian); 17067072 h there is 1948-01-01."""
    source = with_time(tmp_path, 17067072.0 + 6.0 * np.arange(3), {"units": "hours since 1-1-1 00:00:0.0"})
    start = (dt.datetime(1948, 1, 1) - dt.datetime(1800, 1, 1)).total_seconds() / 3600
    store = build(tmp_path, source)
    np.testing.assert_array_equal(store.time, start + 6.0 * np.arange(3))
    assert str(store.dates(1)[0]) == "1948-01-01 06:00:00"


@pytest.mark.parametrize(("calendar", "days_per_year"), [("360_day", 360), ("noleap", 365), ("all_leap", 366)])
def test_other_calendars_keep_their_own_day_count(tmp_path, calendar: str, days_per_year: int) -> None:
    """Days since 2000-01-01 in a model calendar, stored as hours since 1800-01-01 in that same calendar:
    200 years of `days_per_year` days, then the day offsets."""
    source = with_time(tmp_path, np.array([0.0, 0.25, 0.5]), {"units": "days since 2000-01-01", "calendar": calendar})
    store = build(tmp_path, source)
    np.testing.assert_array_equal(store.time, 200 * days_per_year * 24 + np.array([0.0, 6.0, 12.0]))
    assert store.calendar == calendar


def test_unknown_calendar_is_one_line(tmp_path) -> None:
    source = with_time(tmp_path, np.arange(3.0), {"units": "days since 2000-01-01", "calendar": "martian"})
    with pytest.raises(MegageoError, match=rf"^{source}: cannot decode time 'time' \(.*martian.*\)$"):
        build(tmp_path, source)


# --- latitude order, longitudes from -180 --------------------------------------------------------------------


@pytest.mark.parametrize("lat_order", ["descending", "ascending"])
def test_longitudes_from_minus_180_become_0_to_360(tmp_path, lat_order: str) -> None:
    """Columns at -180, -135, ..., 135 are stored at 0, 45, ..., 315: the file's column 4 (0°) comes first."""
    data = heights()
    lat = LAT if lat_order == "descending" else LAT[::-1]
    file_data = data if lat_order == "descending" else data[:, :, ::-1]
    coords = {"time": (HOURS_1979 + 6.0 * np.arange(3), {"units": "hours since 1800-01-01"}),
              "level": (LEVELS, {"units": "hPa"}), "latitude": (lat, {"units": "degrees_north"}),
              "longitude": (LON - 180.0, {"units": "degrees_east"})}
    store = build(tmp_path, write(tmp_path / "in.nc", file_data, coords=coords))
    np.testing.assert_array_equal(store.lat, LAT)
    np.testing.assert_array_equal(store.lon, LON)
    np.testing.assert_array_equal(store.read(0, 3), np.concatenate([data[..., 4:], data[..., :4]], axis=-1))


def test_files_with_either_longitude_convention_concatenate(tmp_path) -> None:
    first = write(tmp_path / "a.nc", heights(3, seed=1))
    coords = bare_coords(3)
    coords["time"] = (HOURS_1979 + 6.0 * np.arange(3, 6), {"units": "hours since 1800-01-01"})
    coords["lon"] = (LON - 180.0, {})
    second_data = heights(3, seed=2)
    second = write(tmp_path / "b.nc", second_data, coords=coords)
    store = build(tmp_path, first, second)
    np.testing.assert_array_equal(store.read(3, 6), np.concatenate([second_data[..., 4:], second_data[..., :4]], -1))


# --- seasonal means --------------------------------------------------------------------------------------------


def test_seasonal_means_are_kept_and_windows_refuse_them(tmp_path) -> None:
    """DJF, MAM, JJA, SON 1979 means stamped at their middle months: 90, 92, 92 days apart."""
    from megageo.data.dataset import WindowDataset

    stamps = [dt.datetime(1979, 1, 15), dt.datetime(1979, 4, 15), dt.datetime(1979, 7, 16), dt.datetime(1979, 10, 16)]
    hours = np.array([(d - dt.datetime(1800, 1, 1)).total_seconds() / 3600 for d in stamps])
    source = with_time(tmp_path, hours, {"units": "hours since 1800-01-01"})
    store = build(tmp_path, source)
    np.testing.assert_array_equal(store.steps(), [2160.0, 2208.0, 2208.0])
    with pytest.raises(MegageoError, match=r"irregular time step \(2160 h after frame 0: 1979-01-15 00:00:00, where "
                       r"the step is 2208 h\); windows need a regular step, not means"):
        WindowDataset(tmp_path / "s.h5", t_in=1, t_out=1)
