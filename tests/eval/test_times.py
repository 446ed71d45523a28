"""NCEP's time axis (hours since 1800-01-01) and the calendar parts the climatology bins on."""

from datetime import datetime

import cftime
import numpy as np

from megageo.eval.times import day_of_year, hour_of_day, hours_since_1800, to_datetime64, valid_times

# 1800-01-01 → 1948-01-01: 148 years with 35 leap days (1804…1944 without 1900) = 54 055 days.
NCEP_FIRST_TIME = 54_055 * 24


def test_first_ncep_reanalysis_time_converts_both_ways():
    assert to_datetime64(NCEP_FIRST_TIME) == np.datetime64("1948-01-01T00:00:00")
    assert hours_since_1800(np.datetime64("1948-01-01T18", "h")) == NCEP_FIRST_TIME + 18


def test_calendar_parts_of_a_leap_year():
    times = np.array(["2004-01-01T00", "2004-02-29T06", "2004-12-31T18"], dtype="datetime64[h]")
    assert day_of_year(times).tolist() == [0, 59, 365]
    assert hour_of_day(times).tolist() == [0, 6, 18]


def test_valid_times_pair_every_initialisation_with_every_lead():
    valid = valid_times(np.array(["2001-01-01T00", "2001-01-01T06"], dtype="datetime64[h]"), [6, 24])
    expected = np.array([["2001-01-01T06", "2001-01-02T00"], ["2001-01-01T12", "2001-01-02T06"]],
                        dtype="datetime64[s]")
    np.testing.assert_array_equal(valid, expected)


def test_datetime_objects_from_python_and_cftime_convert_alike():
    objects = np.array([[datetime(1948, 1, 1, 18), cftime.DatetimeGregorian(2004, 2, 29, 6)]], dtype=object)
    expected = np.array([["1948-01-01T18", "2004-02-29T06"]], dtype="datetime64[s]")
    np.testing.assert_array_equal(to_datetime64(objects), expected)
