"""Guidance against hand-computed Gaussian cases: with a Gaussian prior N(m, P) the noise predictor is known in
closed form, so SDA's guided ε can be written out with matrices, and moment-matching posterior sampling must
sample the Kalman analysis N(m + K(y − Am), (I − KA)P) itself."""

from __future__ import annotations

import pytest
import torch

from megageo.da.guidance import GaussianGuidance, MomentMatchingGuidance, conjugate_gradient
from megageo.da.sde import VPSDE

DIM, OBSERVED = 5, [0, 2, 4]


@pytest.fixture(scope="module")
def prior() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    root = torch.randn(DIM, DIM, generator=generator, dtype=torch.float64)
    return torch.randn(DIM, generator=generator, dtype=torch.float64), root @ root.T / DIM + 0.1 * torch.eye(DIM, dtype=torch.float64)


def gaussian_noise_predictor(sde: VPSDE, mean: torch.Tensor, cov: torch.Tensor):
    """The exact ε̂(x_t, t) = (x_t − μ E[x | x_t]) / σ for x ~ N(mean, cov), with E[x | x_t] by Gaussian conditioning."""

    def eps(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu, sigma = sde.mu(t), sde.sigma(t)
        marginal = mu**2 * cov + sigma**2 * torch.eye(DIM, dtype=cov.dtype)
        gain = mu * cov @ torch.linalg.inv(marginal)
        denoised = mean + (x_t - mu * mean) @ gain.T
        return (x_t - mu * denoised) / sigma

    return eps


def observe(x: torch.Tensor) -> torch.Tensor:
    return x[..., OBSERVED]


def matrix_a() -> torch.Tensor:
    return torch.eye(DIM, dtype=torch.float64)[OBSERVED]


def test_sda_guidance_is_the_gradient_of_the_gamma_inflated_gaussian_likelihood(prior) -> None:
    mean, cov = prior
    sde, t = VPSDE(), torch.tensor(0.4, dtype=torch.float64)
    y, std = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([0.3, 0.2, 0.5], dtype=torch.float64)
    x_t = torch.randn(2, DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = gaussian_noise_predictor(sde, mean, cov)
    guided = GaussianGuidance(eps, sde, y, observe, std, gamma=0.05)(x_t, t)

    mu, sigma = sde.mu(t), sde.sigma(t)
    jacobian = mu * cov @ torch.linalg.inv(mu**2 * cov + sigma**2 * torch.eye(DIM, dtype=torch.float64))  # ∂x̂/∂x_t
    denoised = mean + (x_t - mu * mean) @ jacobian.T
    variance = std**2 + 0.05 * (sigma / mu) ** 2
    score = ((y - denoised @ matrix_a().T) / variance) @ matrix_a() @ jacobian  # Jᵀ Aᵀ (y − A x̂) / var
    torch.testing.assert_close(guided, eps(x_t, t) - sigma * score, rtol=1e-12, atol=1e-12)


def test_conjugate_gradient_solves_an_m_dimensional_system_in_m_steps() -> None:
    generator = torch.Generator().manual_seed(2)
    root = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    matrix = root @ root.T + torch.eye(4, dtype=torch.float64)
    b = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    solution = conjugate_gradient(lambda v: v @ matrix, b, steps=4)
    torch.testing.assert_close(solution, torch.linalg.solve(matrix, b.T).T, rtol=1e-9, atol=1e-10)


def test_moment_matching_sampler_draws_the_kalman_analysis(prior) -> None:
    """4,000 members, 256 predictor steps, CG with as many steps as observations: the ensemble mean is within 4
    standard errors of the Kalman analysis mean and the ensemble covariance within 10 % of its covariance."""
    mean, cov = prior
    sde, members = VPSDE(), 4000
    y = torch.tensor([1.0, -0.5, 0.8], dtype=torch.float64)
    std = torch.full((3,), 0.3, dtype=torch.float64)
    a = matrix_a()
    gain = cov @ a.T @ torch.linalg.inv(a @ cov @ a.T + torch.diag(std**2))
    analysis_mean, analysis_cov = mean + gain @ (y - a @ mean), cov - gain @ a @ cov

    guided = MomentMatchingGuidance(gaussian_noise_predictor(sde, mean, cov), sde, y, observe, std, cg_steps=3)
    ensemble = sde.sample(guided, (members, DIM), steps=256, generator=torch.Generator().manual_seed(3),
                          dtype=torch.float64)
    standard_error = (analysis_cov.diagonal() / members).sqrt()
    assert ((ensemble.mean(0) - analysis_mean).abs() <= 4 * standard_error).all(), (ensemble.mean(0), analysis_mean)
    ensemble_cov = torch.cov(ensemble.T)
    assert float((ensemble_cov - analysis_cov).norm() / analysis_cov.norm()) <= 0.10
    prior_spread = float(cov.diagonal()[OBSERVED].sum())
    assert float(ensemble_cov.diagonal()[OBSERVED].sum()) < 0.5 * prior_spread  # the observations did constrain it


def test_conjugate_gradient_stops_a_row_at_its_first_direction_without_positive_curvature() -> None:
    """Row 0: an indefinite diag(2, −1) with b along its negative direction returns 0 instead of dividing by b'Ab < 0.
    Row 1: b = (1, 1) has curvature 2 − 1 = 1, so the first step α = b'b / 1 = 2 reaches x = (2, 2); the next
    direction, p = (6, 12), has p'Ap = 72 − 144 < 0, so x stays (2, 2). Row 2 is positive definite: solved exactly."""
    matrices = torch.tensor([[[2.0, 0.0], [0.0, -1.0]], [[2.0, 0.0], [0.0, -1.0]], [[3.0, 1.0], [1.0, 2.0]]],
                            dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    solution = conjugate_gradient(lambda v: torch.einsum("nij,nj->ni", matrices, v), b, steps=2)
    assert torch.isfinite(solution).all()
    torch.testing.assert_close(solution[0], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(solution[1], torch.tensor([2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(solution[2], torch.linalg.solve(matrices[2], b[2]))
