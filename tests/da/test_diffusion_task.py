"""`task: diffusion` trains through `megageo train` like a forecaster: under context parallelism its losses are the
single process's, its checkpoint goes through the conversion tools, and `megageo da assimilate` samples an
analysis ensemble from it that follows the observations where it has them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "train"))

from multiprocess import run_ranks  # noqa: E402
from tiny_run import build_tiny_store, run_training, tiny_overrides  # noqa: E402

DIFFUSION = dict(task="diffusion", data__t_in=4, data__t_out=1, data__normalisation="grid_point",
                 model__tokens="patch", model__patch_size=4,
                 model__tubelet_frames=2, model__head="absolute", model__head_conv_size=3,
                 model__mixer="{type: global_linear, num_heads: 4, head_dim: 8, grid_conv_size: 3, "
                              "grid_conv_frames: 3}",
                 diffusion__steps=8, diffusion__augment="[zonal_shift, mirror]", train__steps=6,
                 train__save_every=6)


def _train(store: Path, out: Path, cp: int, gaussian: bool) -> list[float]:
    import megageo.da.commands  # noqa: F401  (registers the task, as the CLI does)

    return run_training(tiny_overrides(store, out, parallel__context_parallel=cp, diffusion__gaussian_base=gaussian,
                                       **DIFFUSION))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory) -> dict[tuple[int, bool], tuple[Path, list[list[float]]]]:
    """(CP size, `diffusion.gaussian_base`) → run directory and each rank's losses: the network alone at CP 1, and
    with the Gaussian base at CP 1 and 2 (its projections summed over the two blocks)."""
    layouts = [(1, False), (1, True), (2, True)]
    outs = {layout: tmp_path_factory.mktemp(f"cp{layout[0]}{'_gaussian' * layout[1]}") for layout in layouts}
    return {layout: (out, run_ranks(_train, layout[0], store, out, *layout)) for layout, out in outs.items()}


def test_context_parallel_diffusion_training_is_the_single_process_run(runs) -> None:
    (alone,), (single,) = runs[1, False][1], runs[1, True][1]
    assert len(alone) == 6 and 0.5 < alone[0] < 1.5  # the edm target has unit variance for unit-variance data
    # The same windows and noise: the Gaussian's exact denoiser already explains part of the target.
    assert single[0] < alone[0]
    # Same windows, same noise, the same symmetries for both blocks of a window; only the order of the fp32 sums
    # over the two blocks' states (and the Gaussian's projections) differs.
    for rank in runs[2, True][1]:
        assert rank == pytest.approx(single, rel=1e-6)


def test_the_denoiser_checkpoint_consolidates_by_its_own_names(runs, tmp_path) -> None:
    from safetensors.torch import load_file

    from megageo.cli import main

    for layout, name in (((2, True), "denoiser.safetensors"), ((1, False), "alone.safetensors")):
        assert main(["convert", "consolidate", str(runs[layout][0]), str(tmp_path / name)]) == 0
    weights = load_file(tmp_path / "denoiser.safetensors")
    assert weights.keys() == load_file(tmp_path / "alone.safetensors").keys()  # the Gaussian is refitted, not kept
    assert weights["noise_level.fc1.weight"].shape == (32, 32)
    assert weights["head.proj.weight"].shape == (256, 32)  # every token → 8 features of its 4 × 4 values in 2 frames
    assert weights["head.conv.weight"].shape == (2, 16, 3, 3)  # → each frame's value from its 3 × 3 neighbourhood


def test_assimilate_writes_an_ensemble_that_follows_its_observations(store, runs, tmp_path, capsys) -> None:
    import netCDF4

    from megageo.cli import main
    from megageo.da.observations import Observations, write_observations
    from megageo.data.store import Store
    from megageo.eval.times import to_datetime64

    grid = Store(store)
    times = to_datetime64(np.asarray(grid.dates(np.arange(40, 44))))
    truth = grid.read(40, 44)[:, 0]
    rows, cols = np.array([1, 3, 5, 2]), np.array([0, 4, 9, 15])
    obs = Observations("hgt", 500.0, np.repeat(times, 4), np.tile(grid.lat[rows], 4), np.tile(grid.lon[cols], 4),
                       truth[:, rows, cols].ravel(), np.full(16, 2.0))
    write_observations(tmp_path / "obs.nc", obs)
    out = tmp_path / "analysis.nc"
    assert main(["da", "assimilate", str(runs[1, False][0]), "--obs", str(tmp_path / "obs.nc"), "--out", str(out),
                 "--members", "3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"analysis ensemble written to {out}"
    with netCDF4.Dataset(out) as dataset:
        assert dataset["hgt"].dimensions == ("member", "time", "level", "lat", "lon")
        assert dataset["hgt"].shape == (3, 4, 1, 8, 16)
        assert dataset.mode == "filter" and dataset.analysis_time == str(times[-1])
        np.testing.assert_allclose(dataset["time"][:], (times - np.datetime64("1800-01-01")) / np.timedelta64(1, "h"))
        members = dataset["hgt"][:, :, 0].filled(np.nan)
        np.testing.assert_allclose(dataset["hgt_mean"][:, 0], members.mean(0), rtol=1e-6)
        np.testing.assert_allclose(dataset["hgt_spread"][:, 0], members.std(0, ddof=1), rtol=1e-4, atol=1e-3)
    at_stations = members[:, np.arange(4)[:, None], rows, cols]
    # Guided by 2 m errors from an untrained prior: every member within 10 m of every observation.
    assert np.abs(at_stations - truth[:, rows, cols]).max() < 10.0
    gaussian = tmp_path / "gaussian.nc"  # the Gaussian base refitted from the training store for sampling
    assert main(["da", "assimilate", str(runs[1, True][0]), "--obs", str(tmp_path / "obs.nc"), "--out", str(gaussian),
                 "--members", "3"]) == 0
    with netCDF4.Dataset(gaussian) as dataset:
        assert dataset["hgt"].shape == (3, 4, 1, 8, 16) and np.isfinite(dataset["hgt"][:].filled(np.nan)).all()
    capsys.readouterr()
    refused = main(["da", "assimilate", str(runs[1, False][0]), "--obs", str(tmp_path / "obs.nc"), "--out",
                    str(tmp_path / "warm.nc"), "--set", "diffusion.start_time=0.5"])
    assert refused == 2 and not (tmp_path / "warm.nc").exists()
    assert capsys.readouterr().err.strip() == (
        "megageo: error: diffusion.start_time below 1 starts from window OI's first guess, which only da twin "
        "computes; da assimilate samples from pure noise (start_time=1)")
