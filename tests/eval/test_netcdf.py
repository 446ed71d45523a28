"""The forecast netCDF read back with plain netCDF4 on the NCEP grid: values, coordinates, CF metadata."""

from datetime import datetime

import netCDF4
import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.eval.netcdf import write_forecast_netcdf

# The reanalysis store's grid: 73 latitudes from the north pole, 144 longitudes from Greenwich, Z500.
LAT = np.linspace(90, -90, 73)
LON = np.arange(144) * 2.5
LEVELS = [500]
# 1948-01-01T00 and T06 as NCEP stores them (hours since 1800-01-01).
INIT_HOURS = np.array([1_297_320.0, 1_297_326.0])
LEADS = [6, 12, 18]


@pytest.fixture
def forecast() -> np.ndarray:
    rng = np.random.default_rng(2)
    return (5500 + 100 * rng.standard_normal((2, 3, 1, 73, 144))).astype(np.float32)


@pytest.fixture
def written(tmp_path, forecast) -> netCDF4.Dataset:
    path = write_forecast_netcdf(tmp_path / "forecast.nc", {"hgt": forecast}, INIT_HOURS, LEADS, LEVELS, LAT, LON,
                                 model="gla-tiny step 500")
    with netCDF4.Dataset(path) as dataset:
        yield dataset


def test_values_and_grid_come_back_unchanged(written, forecast):
    assert written["hgt"].dimensions == ("time", "lead_time", "level", "lat", "lon")
    np.testing.assert_array_equal(written["hgt"][:], forecast)
    np.testing.assert_array_equal(written["lat"][:], LAT.astype(np.float32))
    np.testing.assert_array_equal(written["lon"][:], LON.astype(np.float32))
    np.testing.assert_array_equal(written["level"][:], LEVELS)
    np.testing.assert_array_equal(written["lead_time"][:], LEADS)


def test_times_decode_to_the_initialisation_and_valid_times(written):
    def decode(variable: netCDF4.Variable) -> list[datetime]:
        return list(np.ravel(netCDF4.num2date(variable[:], variable.units, variable.calendar,
                                              only_use_cftime_datetimes=False, only_use_python_datetimes=True)))

    assert decode(written["time"]) == [datetime(1948, 1, 1, 0), datetime(1948, 1, 1, 6)]
    assert written["valid_time"].dimensions == ("time", "lead_time")
    assert decode(written["valid_time"]) == [datetime(1948, 1, 1, hour) for hour in (6, 12, 18, 12, 18)] + [
        datetime(1948, 1, 2, 0)]


def test_cf_metadata(written):
    assert written.Conventions == "CF-1.8"
    assert written.institution == "megageo"
    assert "gla-tiny step 500" in written.source
    assert "megageo forecast" in written.history
    assert written.title
    field = written["hgt"]
    assert (field.standard_name, field.units, field.coordinates) == ("geopotential_height", "m", "valid_time")
    assert (written["time"].standard_name, written["lead_time"].standard_name) == (
        "forecast_reference_time", "forecast_period")
    assert (written["lead_time"].units, written["level"].units) == ("hours", "hPa")
    assert (written["lat"].units, written["lon"].units) == ("degrees_north", "degrees_east")
    assert written["valid_time"].standard_name == "time"


def test_a_single_datetime64_initialisation_gives_a_time_dimension_of_one(tmp_path, forecast):
    path = write_forecast_netcdf(tmp_path / "one.nc", {"hgt": forecast[:1]}, np.datetime64("1948-01-01T06"), LEADS, LEVELS,
                                 LAT, LON, model="m")
    with netCDF4.Dataset(path) as dataset:
        assert dataset.dimensions["time"].size == 1
        assert dataset["time"][:].tolist() == [INIT_HOURS[1]]


def test_mismatched_coordinates_leave_no_file_behind(tmp_path, forecast):
    with pytest.raises(MegageoError, match="coordinates"):
        write_forecast_netcdf(tmp_path / "bad.nc", {"hgt": forecast}, INIT_HOURS, LEADS, LEVELS, LAT[:-1], LON, model="m")
    assert list(tmp_path.iterdir()) == []


def test_each_variable_is_its_own_cf_variable_in_its_units(tmp_path, forecast):
    wind = (forecast - 5500) / 10
    path = write_forecast_netcdf(tmp_path / "two.nc", {"hgt": forecast, "uwnd": wind}, INIT_HOURS, LEADS, LEVELS,
                                 LAT, LON, model="m")
    with netCDF4.Dataset(path) as dataset:
        np.testing.assert_array_equal(dataset["uwnd"][:], wind)
        np.testing.assert_array_equal(dataset["hgt"][:], forecast)
        assert (dataset["uwnd"].standard_name, dataset["uwnd"].units) == ("eastward_wind", "m s-1")
        assert dataset["uwnd"].dimensions == dataset["hgt"].dimensions
