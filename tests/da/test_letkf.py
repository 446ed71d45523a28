"""The LETKF's local analysis against DAPPER's square-root EnKF (an independent implementation): a point's
analysis is the global ETKF's with that point's tapered error variances σ²/w, and an untapered LETKF is the ETKF."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from megageo.da.ensemble_filters import enkf_analysis, import_dapper, letkf_analysis


def _dapper_sqrt(members: np.ndarray, observed: np.ndarray, y: np.ndarray, variances: np.ndarray) -> np.ndarray:
    EnKF_analysis = import_dapper("dapper.da_methods.ensemble").EnKF_analysis
    GaussRV = import_dapper("dapper.tools.randvars").GaussRV

    return EnKF_analysis(members, observed, GaussRV(C=np.diag(variances)), y, "Sqrt")


@pytest.fixture
def problem() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    members, points, stations = 6, 5, 4
    prior = rng.standard_normal((members, points, 2)) + np.arange(points)[None, :, None]
    operator = rng.standard_normal((stations, points))  # observations mix the first variable's points
    observed = prior[:, :, 0] @ operator.T
    y = observed.mean(0) + rng.standard_normal(stations)
    taper = rng.uniform(0.2, 1.0, (points, stations))
    in_reach = np.array([[0, 0, 1, 0], [1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=bool)
    taper[~in_reach] = 0.0  # the points see 1 to 4 of the stations, not always the first ones
    return {"prior": prior, "observed": observed, "y": y, "taper": taper}


def test_an_untapered_letkf_is_dappers_square_root_enkf(problem) -> None:
    prior, observed, y = problem["prior"], problem["observed"], problem["y"]
    points = prior.shape[1]
    ours = letkf_analysis(torch.as_tensor(prior), torch.as_tensor(observed), torch.as_tensor(y), 0.5,
                          torch.ones(points, len(y), dtype=torch.float64), inflation=1.0).numpy()
    reference = _dapper_sqrt(prior.reshape(len(prior), -1), observed, y, np.full(len(y), 0.25))
    np.testing.assert_allclose(ours.reshape(len(prior), -1), reference, rtol=0, atol=1e-12)


def test_each_point_takes_the_etkf_of_its_tapered_error_variances(problem) -> None:
    prior, observed, y, taper = problem["prior"], problem["observed"], problem["y"], problem["taper"]
    ours = letkf_analysis(torch.as_tensor(prior), torch.as_tensor(observed), torch.as_tensor(y), 0.5,
                          torch.as_tensor(taper), inflation=1.0).numpy()
    for point in range(prior.shape[1]):
        reach = taper[point] > 0
        reference = _dapper_sqrt(prior[:, point], observed[:, reach], y[reach], 0.25 / taper[point, reach])
        np.testing.assert_allclose(ours[:, point], reference, rtol=0, atol=1e-12)


def test_inflation_scales_the_prior_covariance(problem) -> None:
    """Inflating by ρ is the ETKF of prior anomalies scaled by √ρ in state and observation space alike (Hunt et al.
    2007, eq. 21): the same members, as the symmetric square root scales with ρ."""
    prior, observed, y = problem["prior"], problem["observed"], problem["y"]
    points, rho = prior.shape[1], 1.5
    ours = letkf_analysis(torch.as_tensor(prior), torch.as_tensor(observed), torch.as_tensor(y), 0.5,
                          torch.ones(points, len(y), dtype=torch.float64), inflation=rho).numpy()
    inflate = lambda e: e.mean(0) + np.sqrt(rho) * (e - e.mean(0))  # noqa: E731
    reference = _dapper_sqrt(inflate(prior.reshape(len(prior), -1)), inflate(observed), y, np.full(len(y), 0.25))
    np.testing.assert_allclose(ours.reshape(len(prior), -1), reference, rtol=0, atol=1e-12)


def test_the_global_enkf_is_the_untapered_letkf_at_the_same_inflation(problem) -> None:
    prior, observed, y = (torch.as_tensor(problem[key]) for key in ("prior", "observed", "y"))
    untapered = torch.ones(prior.shape[1], len(y), dtype=torch.float64)
    letkf = letkf_analysis(prior, observed, y, 0.5, untapered, inflation=1.3)
    torch.testing.assert_close(enkf_analysis(prior, observed, y, 0.5, inflation=1.3), letkf, rtol=0, atol=1e-12)


def test_importing_dapper_keeps_the_process_thread_pools() -> None:
    """In a fresh process (DAPPER not imported yet) whose torch has run a parallel op: a plain import of DAPPER
    leaves torch on one thread (the oracle that this test can fail), `import_dapper` keeps the two it had."""
    probe = ("import torch; from megageo.da.ensemble_filters import import_dapper; torch.set_num_threads(2); "
             "torch.ones(512, 512) @ torch.ones(512, 512); import_dapper('{module}'); "
             "import dapper.da_methods.ensemble; print(torch.get_num_threads())")
    threads = [subprocess.run([sys.executable, "-c", probe.format(module=module)], capture_output=True, text=True,
                              check=True).stdout.split()[-1] for module in ("dapper.da_methods.ensemble", "json")]
    assert threads == ["2", "1"]
