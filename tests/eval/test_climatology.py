"""Day-of-year × hour-of-day climatology: binning, smoothing window, gap filling, persistence on disk."""

import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.eval.climatology import Climatology
from megageo.eval.times import hours_since_1800


def _frames(values: list[float]) -> np.ndarray:
    """One frame [C=1, H=2, W=1] per value: the value on the northern point, its negative on the southern."""
    column = np.array([1.0, -1.0]).reshape(1, 2, 1)
    return np.array(values).reshape(-1, 1, 1, 1) * column


def _times(*stamps: str) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[h]")


def test_each_bin_is_the_mean_over_years_at_that_day_and_hour():
    times = _times("2001-01-01T00", "2002-01-01T00", "2001-01-01T06", "2002-01-01T06")
    climatology = Climatology.fit(_frames([1, 3, 10, 20]), times, half_window_days=0)
    lookup = climatology.lookup(_times("2010-01-01T00", "2010-01-01T06"))
    np.testing.assert_array_equal(lookup, _frames([2, 15]))
    assert climatology.hours.tolist() == [0, 6]


def test_window_pools_neighbouring_days_weighted_by_frame_count():
    # Days 9, 9, 10, 11 of the year carry 1, 1, 2, 6: with ±1 day, day 10 sees all four → 10 / 4.
    times = _times("2001-01-10T00", "2002-01-10T00", "2001-01-11T00", "2001-01-12T00")
    climatology = Climatology.fit(_frames([1, 1, 2, 6]), times, half_window_days=1)
    np.testing.assert_array_equal(climatology.lookup(_times("2005-01-11T00")), _frames([2.5]))
    assert climatology.window_counts[10, 0] == 4


def test_window_wraps_around_the_new_year():
    # The last bin (day 365, reached on 31 December of leap years) sees 31 December 2001 (day 364) and 1 January.
    times = _times("2001-12-31T00", "2002-01-01T00")
    climatology = Climatology.fit(_frames([4, 8]), times, half_window_days=1)
    np.testing.assert_array_equal(climatology.lookup(_times("2004-12-31T00")), _frames([6]))


def test_days_outside_every_window_take_the_nearest_covered_day():
    # Frames on days 100 and 110 with ±2 days cover days 98–102 and 108–112. Day 104 is nearest to 102
    # (so day 100's value); day 200 is 88 days from 112 but 102 days from 98 (so day 110's value).
    times = _times("2001-04-11T00", "2001-04-21T00")
    climatology = Climatology.fit(_frames([5, 7]), times, half_window_days=2)
    day_104, day_200 = np.datetime64("2001-01-01T00") + np.array([104, 200]) * np.timedelta64(24, "h")
    np.testing.assert_array_equal(climatology.lookup(np.array([day_104, day_200])), _frames([5, 7]))
    assert climatology.window_counts[[102, 104, 200], 0].tolist() == [1, 0, 0]


def test_lookup_keeps_the_shape_of_the_times():
    times = _times("2001-01-01T00", "2001-01-01T06")
    climatology = Climatology.fit(_frames([1, 2]), times, half_window_days=0)
    valid = _times("2003-01-01T00", "2003-01-01T06", "2003-01-01T06", "2003-01-01T00").reshape(2, 2)
    assert climatology.lookup(valid).shape == (2, 2, 1, 2, 1)


def test_hours_since_1800_and_datetime64_give_the_same_climatology():
    times = _times("2001-01-01T00", "2001-01-01T06", "2001-01-02T00")
    frames = _frames([1, 2, 3])
    from_datetimes = Climatology.fit(frames, times)
    from_hours = Climatology.fit(frames, hours_since_1800(times))
    np.testing.assert_array_equal(from_hours.fields, from_datetimes.fields)


def test_lookup_at_an_hour_the_training_split_never_saw_is_an_error():
    climatology = Climatology.fit(_frames([1]), _times("2001-01-01T00"))
    with pytest.raises(MegageoError, match="hours"):
        climatology.lookup(_times("2001-01-01T03"))


def test_fit_reads_only_as_many_leading_frames_as_there_are_training_times():
    climatology = Climatology.fit(_frames([1, 2, 100]), _times("2001-01-01T00", "2002-01-01T00"), half_window_days=0)
    np.testing.assert_array_equal(climatology.lookup(_times("2003-01-01T00")), _frames([1.5]))


def test_fit_rejects_a_window_wider_than_half_a_year_and_more_times_than_frames():
    with pytest.raises(MegageoError):
        Climatology.fit(_frames([1]), _times("2001-01-01T00"), half_window_days=183)
    with pytest.raises(MegageoError):
        Climatology.fit(_frames([1]), _times("2001-01-01T00", "2001-01-01T06"))


def test_save_and_load_round_trip(tmp_path):
    times = _times("2001-01-01T00", "2001-01-01T12")
    climatology = Climatology.fit(_frames([1, 2]), times, half_window_days=3)
    climatology.save(tmp_path / "climatology.npz")
    loaded = Climatology.load(tmp_path / "climatology.npz")
    np.testing.assert_array_equal(loaded.fields, climatology.fields)
    np.testing.assert_array_equal(loaded.hours, climatology.hours)
    np.testing.assert_array_equal(loaded.window_counts, climatology.window_counts)
    assert loaded.half_window_days == 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["climatology.npz"]
