"""Several variables in one store: NCEP's per-variable yearly files (and CF files found by standard name) become
channels (variable, level), variable-major, each with its own training-split mean and std, read back exactly;
files of different variables must agree on time and grid; units convert into the store's; a config names its
variables and levels, and a store without them fails at start-up."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from megageo.cli import main
from megageo.data.build import build_store
from megageo.data.dataset import WindowDataset
from megageo.data.store import Store
from megageo.errors import MegageoError

LEVELS = np.array([850.0, 500.0])
LAT = np.linspace(90, -90, 5)
LON = np.arange(0, 360, 45.0)
HOURS = 1569072.0 + 6.0 * np.arange(10)  # 1979-01-01 00:00 onwards
NCEP_ATTRS = {
    "hgt": {"long_name": "4xDaily Geopotential height", "units": "m"},
    "uwnd": {"long_name": "4xDaily U-wind", "units": "m/s"},
    "vwnd": {"long_name": "4xDaily V wind", "units": "m/s"},
    "air": {"long_name": "4xDaily Air temperature", "units": "degK"},
}
MEANS = {"hgt": [1457.0, 5510.0], "uwnd": [8.0, 14.0], "vwnd": [0.0, 0.5], "air": [275.0, 253.0]}


def field(name: str, seed: int, hours: np.ndarray = HOURS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spread = 80.0 if name == "hgt" else 5.0
    values = np.asarray(MEANS[name])[None, :, None, None] + spread * rng.standard_normal(
        (hours.size, LEVELS.size, LAT.size, LON.size))
    return values.astype(np.float32)


def write(path: Path, variables: dict[str, tuple[dict, np.ndarray]], hours: np.ndarray = HOURS,
          lat: np.ndarray = LAT) -> Path:
    """A file in NCEP's layout holding `variables` (name -> (attributes, values [T, level, lat, lon]))."""
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        for dim, size in (("time", None), ("level", LEVELS.size), ("lat", lat.size), ("lon", LON.size)):
            ds.createDimension(dim, size)
        coords = {"time": {"units": "hours since 1800-01-01 00:00:0.0", "axis": "T"},
                  "level": {"units": "millibar", "axis": "Z"}, "lat": {"units": "degrees_north"},
                  "lon": {"units": "degrees_east"}}
        for dim, attrs in coords.items():
            ds.createVariable(dim, "f8", (dim,)).setncatts(attrs)
        ds["time"][:], ds["level"][:], ds["lat"][:], ds["lon"][:] = hours, LEVELS, lat, LON
        for name, (attrs, values) in variables.items():
            var = ds.createVariable(name, "f4", ("time", "level", "lat", "lon"))
            var.setncatts(attrs)
            var[:] = values
    return path


@pytest.fixture
def ncep_year(tmp_path) -> dict[str, np.ndarray]:
    """hgt.1979.nc, uwnd.1979.nc, vwnd.1979.nc and air.1979.nc in tmp_path/nc; returns what each holds."""
    (tmp_path / "nc").mkdir()
    values = {name: field(name, seed) for seed, name in enumerate(NCEP_ATTRS)}
    for name, attrs in NCEP_ATTRS.items():
        write(tmp_path / "nc" / f"{name}.1979.nc", {name: (attrs, values[name])})
    return values


def test_store_round_trip_holds_each_variable_at_each_level(tmp_path, ncep_year, capsys) -> None:
    out = tmp_path / "store.h5"
    assert main(["data", "build", "--src", str(tmp_path / "nc"), "--out", str(out), "--vars", "hgt,uwnd,air",
                 "--levels", "500,850", "--train-fraction", "0.8"]) == 0
    store = Store(out)
    assert store.variable.tolist() == ["hgt", "hgt", "uwnd", "uwnd", "air", "air"]
    assert store.level.tolist() == [500.0, 850.0] * 3
    assert store.units.tolist() == ["m", "m", "m s-1", "m s-1", "K", "K"]
    assert store.channel_names() == ["hgt500", "hgt850", "uwnd500", "uwnd850", "air500", "air850"]
    frames = store.read(0, 10)
    for channel, (name, level) in enumerate(zip(store.variable, store.level)):
        expected = ncep_year[name][:, int(np.flatnonzero(LEVELS == level)[0])]
        assert np.array_equal(frames[:, channel], expected), (name, level)
        train = expected[:8].astype(np.float64)
        assert store.mean[channel] == pytest.approx(train.mean(), rel=1e-12)
        assert store.std[channel] == pytest.approx(train.std(), rel=1e-12)
    assert [source["name"] for source in store.sources] == ["hgt.1979.nc", "uwnd.1979.nc", "air.1979.nc"]
    summary = capsys.readouterr().out
    assert f"uwnd                500 {store.mean[2]:>10.2f} {store.std[2]:>10.2f}   m s-1\n" in summary


def test_a_height_only_build_skips_other_variables_files_in_a_folder(tmp_path, ncep_year) -> None:
    store = Store(build_store([tmp_path / "nc"], tmp_path / "store.h5", levels=(500,)))
    assert store.variable.tolist() == ["hgt"] and [s["name"] for s in store.sources] == ["hgt.1979.nc"]


def test_one_file_holding_several_variables_found_by_standard_name_and_converted(tmp_path) -> None:
    """ERA5-like: u in knots and t in °C under their CF standard names, beside z in m² s⁻², all in one file."""
    u, t, z = field("uwnd", 1), field("air", 2) - 273.15, field("hgt", 3) * 9.80665
    path = write(tmp_path / "era.nc", {
        "u": ({"standard_name": "eastward_wind", "units": "knots"}, u),
        "t": ({"standard_name": "air_temperature", "units": "degC"}, t),
        "z": ({"standard_name": "geopotential", "units": "m**2 s**-2"}, z),
    })
    store = Store(build_store([path], tmp_path / "store.h5", levels=(500,), variables=("air", "uwnd", "hgt")))
    frames = store.read(0, 10).astype(np.float64)
    assert store.channel_names() == ["air500", "uwnd500", "hgt500"]
    assert np.allclose(frames[:, 0], t[:, 1].astype(np.float64) + 273.15, atol=1e-4)
    assert np.allclose(frames[:, 1], u[:, 1].astype(np.float64) * 0.514444, atol=1e-5)
    assert np.allclose(frames[:, 2], z[:, 1].astype(np.float64) / 9.80665, atol=1e-3)
    assert [source["name"] for source in store.sources] == ["era.nc"]


@pytest.mark.parametrize("mean, accepted", [(253.0, True), (-20.0, False)])
def test_temperature_without_units_is_kelvin_only_if_plausible(tmp_path, mean: float, accepted: bool) -> None:
    values = np.full((HOURS.size, LEVELS.size, LAT.size, LON.size), mean, dtype=np.float32)
    path = write(tmp_path / "air.1979.nc", {"air": ({"long_name": "air"}, values)})
    if accepted:
        store = Store(build_store([path], tmp_path / "store.h5", levels=(500,), variables=("air",)))
        assert np.array_equal(store.read(0, 10)[:, 0], values[:, 1])
    else:
        with pytest.raises(MegageoError, match=r"air temperature 'air' has no units, and its mean at time index 0 "
                                               r"\(-20\.0\) is not plausible in K: set its units attribute$"):
            build_store([path], tmp_path / "store.h5", levels=(500,), variables=("air",))


def test_wind_in_unknown_units_is_refused(tmp_path) -> None:
    path = write(tmp_path / "uwnd.1979.nc", {"uwnd": ({"units": "furlongs/fortnight"}, field("uwnd", 0))})
    with pytest.raises(MegageoError, match=r"eastward wind 'uwnd' has units 'furlongs/fortnight', expected m s-1$"):
        build_store([path], tmp_path / "store.h5", variables=("uwnd",))


def test_variables_whose_times_differ_are_one_line_naming_where(tmp_path, ncep_year) -> None:
    write(tmp_path / "nc" / "vwnd.1979.nc", {"vwnd": (NCEP_ATTRS["vwnd"], field("vwnd", 9, HOURS + 6.0))},
          hours=HOURS + 6.0)
    with pytest.raises(MegageoError) as error:
        build_store([tmp_path / "nc"], tmp_path / "store.h5", variables=("hgt", "vwnd"))
    assert str(error.value) == ("vwnd and hgt differ in time: vwnd.1979.nc (1979-01-01 06:00:00) against "
                                "hgt.1979.nc (1979-01-01 00:00:00) (10 and 10 frames in all)")
    assert not (tmp_path / "store.h5").exists()


def test_a_variable_with_fewer_frames_is_one_line(tmp_path, ncep_year) -> None:
    short = HOURS[:7]
    write(tmp_path / "nc" / "air.1979.nc", {"air": (NCEP_ATTRS["air"], field("air", 9, short))}, hours=short)
    with pytest.raises(MegageoError, match=r"^air and hgt differ in time: air\.1979\.nc ends against hgt\.1979\.nc "
                                           r"\(1979-01-02 18:00:00\) \(7 and 10 frames in all\)$"):
        build_store([tmp_path / "nc"], tmp_path / "store.h5", variables=("hgt", "air"))


def test_variables_on_different_grids_are_one_line(tmp_path, ncep_year) -> None:
    lat = np.linspace(80, -80, 5)
    write(tmp_path / "nc" / "uwnd.1979.nc", {"uwnd": (NCEP_ATTRS["uwnd"], field("uwnd", 9))}, lat=lat)
    with pytest.raises(MegageoError, match=r"uwnd\.1979\.nc: lat grid \(5 points, 80\.\.-80\) differs from "
                                           r"hgt\.1979\.nc \(5 points, 90\.\.-90\)$"):
        build_store([tmp_path / "nc"], tmp_path / "store.h5", variables=("hgt", "uwnd"))


def test_a_variable_no_file_holds_is_one_line(tmp_path, ncep_year) -> None:
    (tmp_path / "nc" / "air.1979.nc").unlink()
    with pytest.raises(MegageoError, match=r"^no source file holds air \(asked for hgt, air\)$"):
        build_store([tmp_path / "nc"], tmp_path / "store.h5", variables=("hgt", "air"))


def test_unknown_variable_and_bad_level_are_one_line(tmp_path, ncep_year, capsys) -> None:
    out = tmp_path / "store.h5"
    assert main(["data", "build", "--src", str(tmp_path / "nc"), "--out", str(out), "--vars", "hgt,rhum"]) == 2
    assert capsys.readouterr().err == "megageo: error: unknown variable 'rhum' (known: hgt, uwnd, vwnd, air)\n"
    assert main(["data", "build", "--src", str(tmp_path / "nc"), "--out", str(out), "--levels", "500,high"]) == 2
    assert capsys.readouterr().err == "megageo: error: --levels: 'high' is not a number\n"
    assert not out.exists()


def test_a_config_asks_for_channels_and_a_store_without_them_fails_at_start_up(tmp_path, ncep_year) -> None:
    store = build_store([tmp_path / "nc"], tmp_path / "store.h5", levels=(500, 850), variables=("hgt", "uwnd"))
    chosen = WindowDataset(store, "train", t_in=2, t_out=1, variables=["uwnd"], levels=[850])
    assert chosen.channels == [3] and chosen.std.tolist() == [pytest.approx(Store(store).std[3])]
    with pytest.raises(MegageoError, match=r"store\.h5: no channel air500 \(air at 500 hPa\) in the store "
                                           r"\(channels: hgt500, hgt850, uwnd500, uwnd850\)$"):
        WindowDataset(store, "train", t_in=2, t_out=1, variables=["hgt", "air"], levels=[500])
