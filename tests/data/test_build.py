"""Several files concatenate in time order; statistics come from the training split only; provenance is kept."""

from __future__ import annotations

import hashlib

import numpy as np

import netcdf_files as nc
from megageo.data.build import build_store
from megageo.data.store import Store


def test_files_concatenate_in_time_order_whatever_order_given(tmp_path):
    """Two 'years' of 4 frames each, packed with different factors, given newest first."""
    first = nc.write(tmp_path / "hgt.1979.nc", nc.heights(4, seed=1), nc.HOURS_1979 + 6.0 * np.arange(4),
                     packed=(0.5, 5000.0))
    second = nc.write(tmp_path / "hgt.1980.nc", nc.heights(4, seed=2), nc.HOURS_1979 + 6.0 * np.arange(4, 8),
                      packed=(1.0, 6000.0))
    store = Store(build_store([tmp_path / "hgt.1980.nc", tmp_path / "hgt.1979.nc"], tmp_path / "s.h5",
                              levels=(500,)))
    np.testing.assert_array_equal(store.read(0, 8), np.concatenate([first, second])[:, [1]])
    np.testing.assert_array_equal(store.steps(), np.full(7, 6.0))
    assert [s["name"] for s in store.sources] == ["hgt.1979.nc", "hgt.1980.nc"]
    assert [s["frames"] for s in store.sources] == [4, 4]
    digest = hashlib.sha256((tmp_path / "hgt.1979.nc").read_bytes()).hexdigest()
    assert store.sources[0] == {"name": "hgt.1979.nc", "bytes": (tmp_path / "hgt.1979.nc").stat().st_size,
                                "sha256": digest, "frames": 4}


def test_directory_source_reads_its_nc_files(tmp_path):
    for year, start in ((1979, 0), (1980, 3)):
        nc.write(tmp_path / f"hgt.{year}.nc", nc.heights(3), nc.HOURS_1979 + 6.0 * np.arange(start, start + 3))
    assert len(Store(build_store([tmp_path], tmp_path / "s.h5"))) == 6


def test_statistics_come_from_the_training_split_only(tmp_path):
    """20 frames, train_fraction 0.75: train_end 15, stats over frames 0..14 whatever the last 5 hold."""
    values = nc.heights(20)
    values[15:] += 1000.0
    expected = nc.write(tmp_path / "in.nc", values, nc.HOURS_1979 + 6.0 * np.arange(20))
    store = Store(build_store([tmp_path / "in.nc"], tmp_path / "s.h5", levels=(850, 500, 200),
                              train_fraction=0.75))
    assert store.train_end == 15
    train = expected[:15].astype(np.float64)
    np.testing.assert_allclose(store.mean, train.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(store.std, train.std(axis=(0, 2, 3)), rtol=1e-10)


def test_monthly_means_keep_their_irregular_time_axis(tmp_path):
    """Jan, Feb, Mar 1979 means: 744 h then 672 h apart, not a gap."""
    hours = nc.HOURS_1979 + np.array([0.0, 744.0, 1416.0])
    nc.write(tmp_path / "hgt.mon.mean.nc", nc.heights(3), hours)
    store = Store(build_store([tmp_path / "hgt.mon.mean.nc"], tmp_path / "s.h5"))
    np.testing.assert_array_equal(store.steps(), [744.0, 672.0])
    assert "irregular, 672 to 744 h" in store.summary()


def test_summary_names_shape_time_grid_levels_stats_split_and_sources(tmp_path):
    nc.write(tmp_path / "hgt.1979.nc", nc.heights(10), nc.HOURS_1979 + 6.0 * np.arange(10))
    summary = Store(build_store([tmp_path / "hgt.1979.nc"], tmp_path / "s.h5", levels=(500, 200))).summary()
    for expected in ("(10, 2, 5, 8)", "1979-01-01 00:00:00 .. 1979-01-03 06:00:00, step 6 h (regular)",
                     "90 .. -90 (5 points)", "0 .. 315 (8 points)", "train frames 0..8 (0.9), val frames 9..9",
                     "hgt.1979.nc  10 frames"):
        assert expected in summary
    store = Store(tmp_path / "s.h5")
    for channel, level in enumerate((500, 200)):
        line = f"hgt         {level:>11} {store.mean[channel]:>10.2f} {store.std[channel]:>10.2f}   m"
        assert summary.count(f"\n{line}\n") == 1, summary
