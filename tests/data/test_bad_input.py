"""Every bad input stops with one line naming the file (and time index or levels), and leaves no file behind."""

from __future__ import annotations

import os

import netCDF4
import numpy as np
import pytest

import netcdf_files as nc
from megageo.cli import main
from megageo.data.build import build_store
from megageo.errors import MegageoError

HOURS = nc.HOURS_1979 + 6.0 * np.arange(4)


def good(path, hours=HOURS, **kwargs):
    nc.write(path, nc.heights(hours.size), hours, **kwargs)
    return path


def truncated(path, **kwargs):
    data = good(path, **kwargs).read_bytes()
    path.write_bytes(data[: len(data) - 500])
    return path


def not_netcdf(path):
    path.write_text("hgt,1979-01-01,5500\n")
    return path


def no_height(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 1)
        ds.createVariable("air", "f4", ("time",)).setncatts({"standard_name": "air_temperature", "units": "K"})
    return path


def with_bad_value(path, value, packed=None):
    values = nc.heights(HOURS.size)
    nc.write(path, values, HOURS, packed=packed)
    with netCDF4.Dataset(path, "a") as ds:
        ds["hgt"].set_auto_maskandscale(False)
        ds["hgt"][2, 1, 3, 4] = value
    return path


def broken_link(path):
    path.symlink_to(path.parent / "migrated" / "hgt.1979.nc")
    return path


def directory(path):
    path.mkdir()
    return path


def pipe(path):
    os.mkfifo(path)
    return path


CASES = {
    "missing file": (lambda p: p, r"in\.nc: no such file or directory"),
    "broken link": (broken_link, r"in\.nc: broken symbolic link to .+/migrated/hgt\.1979\.nc$"),
    "directory named .nc": (directory, r"in\.nc: directory holds no \.nc files$"),
    "pipe": (pipe, r"in\.nc: not a regular file \(a pipe, socket or device\)$"),
    "truncated netCDF3": (lambda p: truncated(p, packed=(1.0, 5000.0)),
                          r"in\.nc: truncated: 1260 bytes, its header needs 1757"),
    "truncated netCDF4": (truncated, r"in\.nc: not a readable netCDF file, truncated or another format\?"),
    "not netCDF": (not_netcdf, r"in\.nc: not a readable netCDF file"),
    "no geopotential height": (no_height, r"in\.nc: no geopotential-height variable \(variables: air\)"),
    "absent level": (lambda p: good(p, levels=np.array([850.0, 700.0, 200.0])),
                     r"in\.nc: level 500 hPa absent from 'hgt' \(levels: 850, 700, 200 hPa\)"),
    "NaN": (lambda p: with_bad_value(p, np.nan),
            r"in\.nc: missing or NaN values in 'hgt' at time index 2 \(1979-01-01 12:00:00\), level 500 hPa"),
    "missing_value float": (lambda p: with_bad_value(p, np.float32(-9.96921e36)), r"at time index 2 "),
    "missing_value packed": (lambda p: with_bad_value(p, 32766, packed=(1.0, 5000.0)), r"at time index 2 "),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_file_gives_one_line_and_no_store(tmp_path, case):
    make, message = CASES[case]
    source = make(tmp_path / "in.nc")
    with pytest.raises(MegageoError, match=message) as error:
        build_store([source], tmp_path / "s.h5")
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["in.nc"] if source.exists() or source.is_symlink() else [])


def two_files(tmp_path, second_hours, **second):
    return [good(tmp_path / "a.nc"), good(tmp_path / "b.nc", hours=second_hours, **second)]


MULTI_FILE_CASES = {
    "gap": ({"second_hours": HOURS + 48.0},
            r"gap between a\.nc \(1979-01-01 18:00:00\) and b\.nc \(1979-01-03 00:00:00\): 30 h, expected about 6 h"),
    "overlap": ({"second_hours": HOURS + 12.0}, r"duplicate or overlapping times: b\.nc starts at b\.nc "
                r"\(1979-01-01 12:00:00\), a\.nc ends at a\.nc \(1979-01-01 18:00:00\)"),
    "duplicate": ({"second_hours": HOURS}, r"duplicate or overlapping times"),
    "grid": ({"second_hours": HOURS + 24.0, "lat": np.linspace(80, -80, 5)},
             r"b\.nc: lat grid \(5 points, 80\.\.-80\) differs from a\.nc \(5 points, 90\.\.-90\)"),
    "levels": ({"second_hours": HOURS + 24.0, "levels": np.array([1000.0, 850.0, 700.0])},
               r"b\.nc: level 500 hPa absent from 'hgt' \(levels: 1000, 850, 700 hPa\)"),
}


@pytest.mark.parametrize("case", MULTI_FILE_CASES)
def test_inconsistent_files_give_one_line_and_no_store(tmp_path, case):
    kwargs, message = MULTI_FILE_CASES[case]
    sources = two_files(tmp_path, **kwargs)
    with pytest.raises(MegageoError, match=message):
        build_store(sources, tmp_path / "s.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "b.nc"]


def test_time_not_increasing_within_a_file(tmp_path):
    source = good(tmp_path / "in.nc", hours=HOURS[[0, 1, 1, 2]])
    with pytest.raises(MegageoError, match=r"in\.nc: time not increasing at index 2: in\.nc \(1979-01-01 06:00:00\)"):
        build_store([source], tmp_path / "s.h5")


def test_failed_build_keeps_an_existing_store(tmp_path):
    store = tmp_path / "s.h5"
    build_store([good(tmp_path / "in.nc")], store)
    before = store.read_bytes()
    with pytest.raises(MegageoError):
        build_store([with_bad_value(tmp_path / "bad.nc", np.nan)], store)
    assert store.read_bytes() == before


def test_a_folder_of_sources_names_the_entry_it_cannot_read(tmp_path):
    good(tmp_path / "hgt.1979.nc")
    (tmp_path / "hgt.1980.nc").mkdir()
    with pytest.raises(MegageoError, match=r"hgt\.1980\.nc: a directory, not a netCDF file$"):
        build_store([tmp_path], tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists()


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    assert main(["data", "build", "--src", str(tmp_path / "nope.nc"), "--out", str(tmp_path / "s.h5")]) == 2
    assert capsys.readouterr().err == f"megageo: error: {tmp_path / 'nope.nc'}: no such file or directory\n"
