"""Windows, split boundaries, normalisation and rank slices of WindowDataset, on a 20-frame store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import netcdf_files as nc
from megageo.data.build import build_store
from megageo.data.dataset import WindowDataset
from megageo.errors import MegageoError
from megageo.eval.forecast import initial_window


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """20 six-hourly frames, levels 850/500/200, train_end 10."""
    root = tmp_path_factory.mktemp("store")
    frames = nc.write(root / "in.nc", nc.heights(20), nc.HOURS_1979 + 6.0 * np.arange(20))
    return build_store([root / "in.nc"], root / "s.h5", levels=(850, 500, 200), train_fraction=0.5), frames


def normalised(frames, dataset):
    return (frames - dataset.mean[:, None, None]) / dataset.std[:, None, None]


def test_train_windows_end_before_train_end_and_val_windows_start_at_it(store):
    path, _ = store
    train = WindowDataset(path, "train", t_in=3, t_out=2, stride=2)
    val = WindowDataset(path, "val", t_in=3, t_out=2, stride=2)
    assert train.starts.tolist() == [0, 2, 4]  # window 4 uses frames 4..8; 6 would reach frame 10
    assert val.starts.tolist() == [10, 12, 14]  # window 14 uses frames 14..18; 16 would reach frame 20
    assert len(WindowDataset(path, "train", t_in=8, t_out=1)) == 2  # starts 0 and 1: frames 0..8, 1..9


def test_sample_is_normalised_inputs_then_targets(store):
    path, frames = store
    dataset = WindowDataset(path, "val", t_in=3, t_out=2, stride=2)
    x, y = dataset[1]
    assert x.shape == (3, 3, 5, 8) and y.shape == (2, 3, 5, 8) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), normalised(frames[12:15], dataset), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), normalised(frames[15:17], dataset), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dataset.denormalize(y).numpy(), frames[15:17], rtol=1e-6)
    assert [str(t) for t in dataset.valid_times(1)] == ["1979-01-04 18:00:00", "1979-01-05 00:00:00"]
    assert dataset.step_hours == 6.0


def test_normalisation_uses_train_statistics_for_both_splits(store):
    path, frames = store
    dataset = WindowDataset(path, "val", t_in=3, t_out=2)
    np.testing.assert_allclose(dataset.mean, frames[:10].astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dataset.std, frames[:10].astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-6)


def test_grid_point_normalisation_removes_each_points_training_mean(store, monkeypatch):
    path, frames = store
    monkeypatch.setattr("megageo.data.anomalies.BLOCK_FRAMES", 3)  # 10 training frames: blocks of 3, 3, 3, 1
    dataset = WindowDataset(path, "val", t_in=3, t_out=2, normalisation="grid_point")
    train = frames[:10].astype(np.float64)
    mean = train.mean(axis=0)
    anomaly_std = np.sqrt(((train - mean) ** 2).mean(axis=(0, 2, 3)))
    assert dataset.mean.shape == (3, 5, 8) and dataset.std.shape == (3,)
    np.testing.assert_allclose(dataset.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(dataset.std, anomaly_std, rtol=1e-4)
    x, _ = dataset[0]
    np.testing.assert_allclose(x.numpy(), (frames[10:13] - mean) / anomaly_std[:, None, None], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dataset.denormalize(x).numpy(), frames[10:13], rtol=1e-6)
    monkeypatch.setattr("megageo.data.dataset.grid_point_moments", lambda *_: pytest.fail("read the split again"))
    given = WindowDataset(path, "val", t_in=3, t_out=2, normalisation="grid_point",
                          statistics=(dataset.mean, dataset.std))
    assert torch.equal(given[0][0], x)
    with pytest.raises(MegageoError, match="normalisation must be channel or grid_point, got 'daily'"):
        WindowDataset(path, "val", t_in=3, t_out=2, normalisation="daily")


def test_level_subset(store):
    path, frames = store
    dataset = WindowDataset(path, "train", t_in=2, t_out=1, levels=[200])
    x, _ = dataset[0]
    assert x.shape == (2, 1, 5, 8)
    np.testing.assert_allclose(x.numpy(), normalised(frames[0:2, [2]], dataset), rtol=1e-6, atol=1e-6)


def test_each_rank_reads_its_contiguous_part_of_the_inputs(store):
    path, _ = store
    dataset = WindowDataset(path, "train", t_in=4, t_out=2, stride=3)
    x, y = dataset[1]
    parts = [dataset.read_window(1, part=r, parts=2) for r in range(2)]
    assert [p[0].shape[0] for p in parts] == [2, 2]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), x, rtol=0, atol=0)
    torch.testing.assert_close(parts[1][1], y, rtol=0, atol=0)
    with pytest.raises(MegageoError, match="cannot give part 0 of 3 of 4 input frames"):
        dataset.read_window(1, part=0, parts=3)


def test_file_opens_lazily_and_reopens_in_worker_processes(store):
    path, _ = store
    dataset = WindowDataset(path, "train", t_in=3, t_out=1)
    assert dataset.store._file is None
    expected = [dataset[i][1] for i in range(len(dataset))]
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    torch.testing.assert_close(list(y for _, y in loader), expected, rtol=0, atol=0)


def test_split_without_windows_is_an_error(store):
    path, _ = store
    with pytest.raises(MegageoError, match=r"the val split \(frames 10\.\.19\) has no window of 8 \+ 4 frames"):
        WindowDataset(path, "val", t_in=8, t_out=4)


def test_irregular_time_step_is_an_error(tmp_path):
    hours = nc.HOURS_1979 + np.array([0.0, 744.0, 1416.0, 2160.0])
    nc.write(tmp_path / "hgt.mon.mean.nc", nc.heights(4), hours)
    path = build_store([tmp_path / "hgt.mon.mean.nc"], tmp_path / "s.h5")
    with pytest.raises(MegageoError, match=r"irregular time step \(672 h after frame 1: 1979-02-01 00:00:00, where the step is 744 h\)"):
        WindowDataset(path, t_in=1, t_out=1)


def test_windows_never_span_a_gap(tmp_path):
    """Two runs of 8 six-hourly frames a year apart (separate synthetic runs, or a missing year): the builder
    refuses the gap unless asked to keep it, and then every window lies inside one run."""
    first = nc.write(tmp_path / "a.nc", nc.heights(8, seed=1), nc.HOURS_1979 + 6.0 * np.arange(8))
    second = nc.write(tmp_path / "b.nc", nc.heights(8, seed=2), nc.HOURS_1979 + 8760.0 + 6.0 * np.arange(8))
    with pytest.raises(MegageoError, match=r"gap between a\.nc .*: 8718 h, expected about 6 h \(--allow-gaps keeps it\)"):
        build_store([tmp_path / "a.nc", tmp_path / "b.nc"], tmp_path / "refused.h5")
    path = build_store([tmp_path / "a.nc", tmp_path / "b.nc"], tmp_path / "s.h5", train_fraction=1.0, allow_gaps=True)
    dataset = WindowDataset(path, "train", t_in=3, t_out=1)
    assert dataset.store.gaps().tolist() == [7]
    assert dataset.step_hours == 6.0
    assert dataset.starts.tolist() == [0, 1, 2, 3, 4, 8, 9, 10, 11, 12]  # 5 windows of 4 frames in each run of 8
    x, y = dataset[5]
    np.testing.assert_allclose(dataset.denormalize(torch.cat([x, y])).numpy(), second[:4, 1:2], atol=1e-3)
    assert "step 6 h (regular, 1 gap(s))" in dataset.store.summary()
    np.testing.assert_allclose(dataset.denormalize(initial_window(dataset, "1980-01-01T12:00")[0]).numpy(),
                               second[:3, 1:2], atol=1e-3)
    with pytest.raises(MegageoError, match=r"the T_in = 3 frames ending at 1980-01-01T06:00 span the store's gap "
                       r"after 1979-01-02 18:00:00"):
        initial_window(dataset, "1980-01-01T06:00")
