"""The twin's filter runs in worker processes give the members the same runs give in this process, each run
placed under its own key whatever order the workers finish in."""

from __future__ import annotations

import numpy as np
import pytest

from megageo.da.ensemble_filters import FilterRun, ShallowWaterEnsemble, initial_ensemble
from megageo.da.filter_pool import FilterPool
from megageo.da.twin import TwinSettings, sw_grid_indices, truth_run
from megageo.data.synth import LAT, LEVEL_CLIMATOLOGY, LON
from megageo.errors import MegageoError


def test_workers_return_each_run_as_this_process_does() -> None:
    rows, cols = sw_grid_indices(LAT, LON)
    model, truth = truth_run(3, 3, ["hgt"], [500.0], rows, cols)
    rng = np.random.default_rng(3)
    stations = np.sort(rng.choice(truth[0, 0].size, 300, replace=False))
    observations = truth[:, 0].reshape(3, -1)[:, stations] + 18.0 * rng.standard_normal((3, 300))
    ensemble = ShallowWaterEnsemble(model, rows, cols, stations, *LEVEL_CLIMATOLOGY[500])
    start = initial_ensemble(model, 4, seed=3, spinup_days=0.25)
    runs = {"free": FilterRun("free"), "letkf": FilterRun("letkf", 2500.0, 1.1), "enkf": FilterRun("enkf",
                                                                                                  inflation=1.3)}
    kept = np.array([1, 2])
    with FilterPool(1) as pool:
        inline = pool.run(runs, ensemble, start, observations, kept, 18.0, "test")
    with FilterPool(2) as pool:
        pooled = pool.run(runs, ensemble, start, observations, kept, 18.0, "test")
    assert list(pooled) == list(inline) == ["free", "letkf", "enkf"]
    for key in runs:
        assert pooled[key].shape == (2, 4, 73, 144)
        np.testing.assert_allclose(pooled[key], inline[key], rtol=0, atol=1e-3)  # float32 metres
    error = {key: np.sqrt(np.mean((members.mean(1) - truth[kept, 0]) ** 2)) for key, members in inline.items()}
    # each key holds its own run: 4 members after 3 cycles measured 102 m (LETKF), 156 m (global EnKF), 159 m (free)
    assert error["letkf"] < 0.7 * error["enkf"] and error["enkf"] < error["free"]


def test_twin_refuses_no_workers() -> None:
    with pytest.raises(MegageoError, match="workers >= 1"):
        TwinSettings(workers=0).check()
