"""Bad observations are refused with one line each, before any model is built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from megageo.da.analysis import Channels, window_times
from megageo.da.observations import Observations, locate, read_observations, write_observations
from megageo.errors import MegageoError

LAT, LON = np.array([90.0, 45.0, 0.0, -45.0, -90.0]), np.arange(8) * 45.0
WINDOW = window_times(np.datetime64("1979-01-02T00:00:00"), 3, "filter")


def observations(**changes) -> Observations:
    columns = dict(time=WINDOW[[0, 2, 2]], lat=np.array([45.0, 0.0, -90.0]), lon=np.array([90.0, -45.0, 0.0]),
                   value=np.array([5500.0, 5800.0, 5000.0]), error_std=np.array([10.0, 10.0, 10.0]))
    columns.update(changes)
    return Observations("hgt", 500.0, **columns)


def test_window_times_end_at_or_centre_on_the_analysis_time() -> None:
    assert [str(t) for t in WINDOW] == ["1979-01-01T12:00:00", "1979-01-01T18:00:00", "1979-01-02T00:00:00"]
    centred = window_times(np.datetime64("1979-01-02T00:00"), 4, "smooth")
    assert [str(t)[11:13] for t in centred] == ["18", "00", "06", "12"]


def test_a_file_round_trips_and_the_operator_selects_each_station(tmp_path) -> None:
    path = write_observations(tmp_path / "obs.nc", observations())
    obs = read_observations(path)
    assert obs.variable == "hgt" and obs.level == 500.0 and list(obs.time) == list(WINDOW[[0, 2, 2]])
    operator = locate(obs, WINDOW, LAT, LON, channel=1, state_shape=(3, 2, 5, 8), path=str(path))
    state = torch.arange(3 * 2 * 5 * 8, dtype=torch.float64).reshape(1, 3, 2, 5, 8)
    # (frame, channel 1, row, col): (0, 1, 1, 2), (2, 1, 2, 7) for lon -45 = 315, (2, 1, 4, 0)
    expected = [state[0, 0, 1, 1, 2], state[0, 2, 1, 2, 7], state[0, 2, 1, 4, 0]]
    assert operator(state)[0].tolist() == [float(v) for v in expected]


def test_observations_are_normalised_by_the_mean_where_each_lies() -> None:
    obs = observations()
    operator = locate(obs, WINDOW, LAT, LON, channel=1, state_shape=(3, 2, 5, 8), path="obs.nc")
    flat = operator.flat_index.numpy()
    per_channel = Channels(["uwnd", "hgt"], [500.0, 500.0], mean=np.array([0.0, 5400.0]), std=np.array([10.0, 200.0]))
    y, std = per_channel.normalise(obs.value, obs.error_std, flat, (3, 2, 5, 8))
    np.testing.assert_allclose(y, [0.5, 2.0, -2.0])
    np.testing.assert_allclose(std, [0.05, 0.05, 0.05])
    field = np.zeros((2, 5, 8))
    field[1, 1, 2], field[1, 2, 7], field[1, 4, 0] = 5600.0, 5700.0, 4900.0  # the stations' points, channel 1
    by_point = Channels(["uwnd", "hgt"], [500.0, 500.0], mean=field, std=np.array([10.0, 50.0]))
    y, std = by_point.normalise(obs.value[None], 10.0, flat, (3, 2, 5, 8))
    np.testing.assert_allclose(y, [[-2.0, 2.0, 2.0]])
    np.testing.assert_allclose(std, [0.2, 0.2, 0.2])
    np.testing.assert_allclose(by_point.physical(torch.ones(1, 2, 5, 8))[0, 1, 1, 2], 5650.0)
    normalised = by_point.normalised(np.full((1, 2, 5, 8), 5700.0))  # a warm start's first guess, in model units
    assert normalised.dtype == torch.float32 and normalised[0, 1, 1, 2].item() == 2.0
    assert normalised[0, 0, 0, 0].item() == 570.0 and normalised[0, 1, 0, 0].item() == 114.0


@pytest.mark.parametrize("changes, message", [
    (dict(value=np.array([5500.0, np.nan, 5000.0])), "1 observation(s) have no value (NaN), the first is #1 (at 1979-01-02T00:00:00)"),
    (dict(error_std=np.array([10.0, 0.0, -1.0])), "2 observation(s) have a non-positive or missing error_std, "
                                                  "the first is #1 (error_std 0.0)"),
    (dict(time=np.array(["1979-01-01T12", "1979-01-02T06", "1979-01-01T15"], dtype="datetime64[s]")),
     "2 observation(s) fall outside the window 1979-01-01T12:00:00 .. 1979-01-02T00:00:00 (or between its 6-hourly "
     "frames), the first is #1 (at 1979-01-02T06:00:00)"),
    (dict(lat=np.array([45.0, 10.0, -90.0])), "1 observation(s) are not at a grid point of the model's grid, the "
                                               "first is #1 (lat 10.0, lon -45.0)"),
])
def test_each_kind_of_bad_observation_is_one_line(tmp_path, changes, message) -> None:
    with pytest.raises(MegageoError) as error:
        locate(observations(**changes), WINDOW, LAT, LON, 0, (3, 1, 5, 8), "obs.nc")
    assert str(error.value) == f"obs.nc: {message}"


def test_a_file_without_the_layout_is_one_line(tmp_path) -> None:
    import netCDF4

    with netCDF4.Dataset(tmp_path / "other.nc", "w") as dataset:
        dataset.createDimension("obs", 1)
        dataset.createVariable("value", "f8", ("obs",))
    with pytest.raises(MegageoError, match=r"not an observation file \(needs variables time, lat, lon, value, "
                                           r"error_std and attributes variable, level; missing \['time', 'lat', "
                                           r"'lon', 'error_std'\]\)"):
        read_observations(tmp_path / "other.nc")
