"""Every input layout ingests to the same store: values exact to float32 rounding, north-to-south latitudes,
times in hours since 1800-01-01, levels in hPa."""

from __future__ import annotations

import numpy as np
import pytest

import netcdf_files as nc
from megageo.data.build import build_store
from megageo.data.store import Store

HOURS = nc.HOURS_1979 + 6.0 * np.arange(6)

VARIANTS = {
    "ncep float32": {},
    "ncep packed int16": {"packed": (0.5, 5000.0)},
    "cf float32": {"style": "cf"},
    "cf packed int16": {"style": "cf", "packed": (1.0, 6000.0)},
    "ncep lat ascending": {"lat_ascending": True},
    "cf geopotential in Pa levels": {"style": "cf", "geopotential": True},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_round_trip(tmp_path, variant):
    expected = nc.write(tmp_path / "in.nc", nc.heights(HOURS.size), HOURS, **VARIANTS[variant])
    store = Store(build_store([tmp_path / "in.nc"], tmp_path / "s.h5", levels=(850, 500, 200)))
    np.testing.assert_array_equal(store.read(0, HOURS.size), expected)
    np.testing.assert_array_equal(store.time, HOURS)
    np.testing.assert_array_equal(store.lat, nc.LAT)
    np.testing.assert_array_equal(store.lon, nc.LON)
    np.testing.assert_array_equal(store.level, [850, 500, 200])
    assert str(store.dates(1)[0]) == "1979-01-01 06:00:00"


def test_packed_values_are_offset_plus_packed_times_scale(tmp_path):
    """NCEP hgt packing: add_offset 32066, scale 1; packed 5 -> 32071 m exactly, -27000 -> 5066 m."""
    values = np.full((1, 3, nc.LAT.size, nc.LON.size), 32071.0)
    values[0, 1] = 5066.0
    nc.write(tmp_path / "in.nc", values, HOURS[:1], packed=(1.0, 32066.0))
    store = Store(build_store([tmp_path / "in.nc"], tmp_path / "s.h5", levels=(500, 850), train_fraction=1))
    assert store.read(0, 1)[0, :, 0, 0].tolist() == [5066.0, 32071.0]


def test_levels_subset_in_requested_order(tmp_path):
    expected = nc.write(tmp_path / "in.nc", nc.heights(2), HOURS[:2])
    store = Store(build_store([tmp_path / "in.nc"], tmp_path / "s.h5", levels=(200, 850)))
    np.testing.assert_array_equal(store.read(0, 2), expected[:, [2, 0]])


def test_single_level_file_with_scalar_pressure_coordinate(tmp_path):
    """ERA5-style single-level download: z(time, latitude, longitude) with a scalar `pressure` coordinate."""
    import netCDF4

    values = np.full((2, nc.LAT.size, nc.LON.size), 5500.0, dtype=np.float32)
    with netCDF4.Dataset(tmp_path / "z500.nc", "w") as ds:
        for name, size, units in (("time", None, "hours since 1979-01-01"), ("latitude", 5, "degrees_north"),
                                  ("longitude", 8, "degrees_east")):
            ds.createDimension(name, size)
            ds.createVariable(name, "f8", (name,)).units = units
        ds["time"][:], ds["latitude"][:], ds["longitude"][:] = [0, 6], nc.LAT, nc.LON
        ds.createVariable("pressure", "f8", ()).setncatts({"standard_name": "air_pressure", "units": "hPa"})
        ds["pressure"].assignValue(500.0)
        z = ds.createVariable("z", "f4", ("time", "latitude", "longitude"))
        z.setncatts({"standard_name": "geopotential_height", "units": "m", "coordinates": "pressure"})
        z[:] = values
    store = Store(build_store([tmp_path / "z500.nc"], tmp_path / "s.h5"))
    assert store.shape == (2, 1, 5, 8)
    np.testing.assert_array_equal(store.time, [nc.HOURS_1979, nc.HOURS_1979 + 6])
    np.testing.assert_array_equal(store.read(0, 2)[:, 0], values)
