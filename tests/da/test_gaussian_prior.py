"""`diffusion.gaussian_base`: the Gaussian fitted to the training windows and its exact denoiser, against dense
linear algebra (the sample covariance averaged over explicitly shifted and mirrored copies, a taper from
great-circle distances, Gaussian conditioning by a solve), and the denoiser that adds it: a network that outputs
zero denoises exactly as that Gaussian does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from tiny_denoiser import WINDOW_SHAPE, tiny_denoiser

from megageo.da.gaussian_prior import ZonalGaussian
from megageo.da.localisation import gaspari_cohn, great_circle_km
from megageo.da.sde import VPSDE
from megageo.errors import MegageoError

SHAPE = (2, 1, 3, 6)  # L, C, H, W
D = int(np.prod(SHAPE))
LAT, LON = np.array([60.0, 0.0, -60.0]), np.arange(6) * 60.0


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """30 correlated windows that are neither zonally stationary nor symmetric about the equator."""
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((D, D)) * np.linspace(1.0, 0.2, D)
    return (rng.standard_normal((30, D)) @ mixing.T + np.linspace(-1, 1, D)).reshape(30, *SHAPE)


def symmetrised_covariance(windows: np.ndarray) -> np.ndarray:
    """The sample covariance (about each (frame, latitude)'s zonal mean) of the windows, averaged over the 6 zonal
    shifts and the mirror of each, as the mean of 12 explicitly transformed copies' outer products."""
    departures = windows - windows.mean(axis=(0, 4), keepdims=True)
    copies = [np.roll(departures, shift, axis=-1)[..., ::-1, :] if mirror else np.roll(departures, shift, axis=-1)
              for shift, mirror in itertools.product(range(SHAPE[-1]), (False, True))]
    return np.mean([c.reshape(len(c), -1).T @ c.reshape(len(c), -1) for c in copies], axis=0) / (len(windows) - 1)


def conditioned(covariance: np.ndarray, mean: np.ndarray, x_t: np.ndarray, t: float) -> np.ndarray:
    sde = VPSDE()
    mu, sigma = (float(f(torch.tensor(t, dtype=torch.float64))) for f in (sde.mu, sde.sigma))
    return mean + mu * covariance @ np.linalg.solve(mu**2 * covariance + sigma**2 * np.eye(D), x_t - mu * mean)


@pytest.mark.parametrize("t", [0.05, 0.5, 0.97])
def test_the_untapered_estimate_conditions_on_the_covariance_of_every_shift_and_mirror(windows, t: float) -> None:
    prior = ZonalGaussian.fit(windows, LAT, LON, taper_km=0)
    x_t = np.random.default_rng(1).standard_normal((3, D))
    mean = np.broadcast_to(windows.mean(axis=(0, 4), keepdims=True)[0], SHAPE).ravel()
    sde, time = VPSDE(), torch.full((3,), t)
    estimate = prior.estimate(torch.from_numpy(x_t).reshape(3, *SHAPE), sde.mu(time), sde.sigma(time))
    expected = [conditioned(symmetrised_covariance(windows), mean, row, t) for row in x_t]
    np.testing.assert_allclose(estimate.reshape(3, -1).double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_the_taper_multiplies_each_covariance_by_gaspari_cohn_of_the_great_circle_distance(windows) -> None:
    """At 6000 km: between two points 60° of latitude or longitude apart at the equator (6672 km) the taper is
    GC(1.112) = 0.1380 by Gaspari and Cohn's (4.10) worked by hand, and points more than 12000 km apart are uncorrelated."""
    prior = ZonalGaussian.fit(windows, LAT, LON, taper_km=6000.0)
    lat, lon = np.repeat(LAT, 6), np.tile(LON, 3)
    taper = np.tile(gaspari_cohn(great_circle_km(lat, lon, lat, lon), 6000.0), (2, 2))
    assert gaspari_cohn(np.array([6671.7]), 6000.0)[0] == pytest.approx(0.1380, abs=1e-4)
    mean = np.broadcast_to(windows.mean(axis=(0, 4), keepdims=True)[0], SHAPE).ravel()
    x_t = np.random.default_rng(2).standard_normal(D)
    sde, time = VPSDE(), torch.full((1,), 0.5)
    estimate = prior.estimate(torch.from_numpy(x_t).reshape(1, *SHAPE), sde.mu(time), sde.sigma(time))
    expected = conditioned(symmetrised_covariance(windows) * taper, mean, x_t, 0.5)
    np.testing.assert_allclose(estimate.ravel().double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_a_single_training_window_is_refused(windows) -> None:
    with pytest.raises(MegageoError, match="needs at least 2 training windows, the store has 1"):
        ZonalGaussian.fit(windows[:1], LAT, LON, taper_km=0)


@pytest.mark.parametrize("head_conv_size", [3, 0])
def test_an_untrained_denoiser_over_the_base_is_the_gaussians_exact_denoiser(head_conv_size: int) -> None:
    """The head's last layer (its convolution, or its projection without one) starts at zero, so the untrained
    network adds nothing: ε̂ = (x_t − μ E[x | x_t]) / σ of the Gaussian alone, and training starts from its loss."""
    from megageo.da.denoiser import noise_predictor

    training = np.random.default_rng(3).standard_normal((12, *WINDOW_SHAPE))
    prior = ZonalGaussian.fit(training, np.linspace(80, -80, 8), np.arange(8) * 45.0, taper_km=4000.0)
    denoiser = tiny_denoiser(lambda: prior, head_conv_size)
    x_t = torch.randn(3, *WINDOW_SHAPE, generator=torch.Generator().manual_seed(2))
    sde, t = VPSDE(), torch.tensor(0.4)
    with torch.no_grad():
        eps = noise_predictor(denoiser)(x_t, t)
        assert tiny_denoiser(head_conv_size=head_conv_size)(x_t, t).abs().mean() > 0.02  # without a base: random
    expected = (x_t - sde.mu(t) * prior.estimate(x_t, sde.mu(t).expand(3), sde.sigma(t).expand(3))) / sde.sigma(t)
    torch.testing.assert_close(eps, expected, rtol=1e-4, atol=1e-4)


def test_a_prior_whose_training_store_is_gone_is_refused_before_any_denoising(tmp_path) -> None:
    from megageo.config import load_config
    from megageo.da.gaussian_prior import fit_from_store

    gone = tmp_path / "gone.h5"
    config = load_config("configs/tiny/diffusion.yaml", [f"data.store={gone}", "diffusion.gaussian_base=true"])
    with pytest.raises(MegageoError, match=f"fitted from its training store {gone}, which is not there"):
        fit_from_store(config)


def test_the_bases_jacobian_product_is_autograds_jacobian_of_its_estimate_and_symmetric() -> None:
    training = np.random.default_rng(4).standard_normal((12, *WINDOW_SHAPE))
    prior = ZonalGaussian.fit(training, np.linspace(80, -80, 8), np.arange(8) * 45.0, taper_km=4000.0)
    generator = torch.Generator().manual_seed(5)
    x_t, u, v = (torch.randn(2, *WINDOW_SHAPE, generator=generator) for _ in range(3))
    sde = VPSDE()
    mu, sigma = sde.mu(torch.tensor([0.3, 0.8])), sde.sigma(torch.tensor([0.3, 0.8]))
    _, autograd = torch.autograd.functional.jvp(lambda x: prior.estimate(x, mu, sigma), x_t, v)
    product = prior.jacobian_product(v, mu, sigma)
    torch.testing.assert_close(product, autograd, rtol=1e-4, atol=1e-5)
    assert float(product.abs().mean()) > 0.05
    torch.testing.assert_close((u * product).sum((1, 2, 3, 4)), (prior.jacobian_product(u, mu, sigma) * v).sum((1, 2, 3, 4)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("guidance", ["gaussian", "mmps"])
def test_guidance_through_the_bases_jacobian_is_exact_for_an_untrained_network_and_only_then(guidance: str) -> None:
    """With the head at zero the denoiser is the Gaussian's, so its Jacobian is the base's and both guided ε̃ agree;
    with the head's weights drawn (unit variance), the network's own Jacobian counts and the two differ by more
    than 2 % of the observations' pull (measured: 4 % for MMPS, 4 % for γ guidance)."""
    from tiny_denoiser import stations

    from megageo.da.denoiser import base_jacobian, noise_predictor
    from megageo.da.guidance import GaussianGuidance, MomentMatchingGuidance
    from megageo.da.observations import ObservationOperator

    training = np.random.default_rng(3).standard_normal((12, *WINDOW_SHAPE))
    prior = ZonalGaussian.fit(training, np.linspace(80, -80, 8), np.arange(8) * 45.0, taper_km=4000.0)
    denoiser = tiny_denoiser(lambda: prior)
    flat, y, std = stations()
    observe, sde, t = ObservationOperator(flat), VPSDE(1e-3), torch.tensor(0.4)
    x_t = torch.randn(3, *WINDOW_SHAPE, generator=torch.Generator().manual_seed(6))

    def guided(jacobian) -> torch.Tensor:
        if guidance == "mmps":
            return MomentMatchingGuidance(noise_predictor(denoiser), sde, y, observe, std, 3, jacobian)(x_t, t)
        return GaussianGuidance(noise_predictor(denoiser), sde, y, observe, std, 0.01, jacobian)(x_t, t)

    unguided = noise_predictor(denoiser)(x_t, t).detach()
    exact, surrogate = guided(None), guided(base_jacobian(denoiser))
    assert float((exact - unguided).abs().mean()) > 0.01  # the observations do pull
    torch.testing.assert_close(surrogate, exact, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        denoiser.head.conv.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(7))
    pull = float((exact - unguided).abs().max())
    assert float((guided(base_jacobian(denoiser)) - guided(None)).abs().max()) > 0.02 * pull  # 0.04 x for mmps
