"""What the denoiser network's output means (`diffusion.prediction`), checked against closed forms for unit-variance
Gaussian data x ~ N(0, 1), whose posterior mean given x_t = μ x + σ ε is μ x_t / (μ² + σ²)."""

from __future__ import annotations

import pytest
import torch

from megageo.config import DiffusionConfig
from megageo.da.sde import VPSDE, Preconditioning

TIMES = torch.tensor([0.0, 0.02, 0.3, 0.5, 0.8, 0.95, 1.0], dtype=torch.float64)


@pytest.mark.parametrize("sigma_data", [1.0, 0.3])
def test_a_zero_edm_network_is_already_the_exact_denoiser_of_gaussian_data_of_its_sigma_data(sigma_data: float) -> None:
    """x ~ N(0, σ_d²): E[x | x_t] = μ σ_d² x_t / (μ² σ_d² + σ²)."""
    sde = VPSDE()
    pre = Preconditioning(sde, "edm", sigma_data)
    x_t = torch.randn(len(TIMES), 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    denoised = sde.denoise(x_t, TIMES[:, None], pre.noise(x_t, TIMES, torch.zeros_like(x_t)).double())
    mu, sigma = sde.mu(TIMES)[:, None], sde.sigma(TIMES)[:, None]
    variance = sigma_data**2
    torch.testing.assert_close(denoised, mu * variance * x_t / (mu**2 * variance + sigma**2), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prediction", ["edm", "epsilon"])
def test_the_training_target_gives_back_the_true_noise(prediction: str) -> None:
    pre = Preconditioning(VPSDE(), prediction)
    generator = torch.Generator().manual_seed(1)
    x, noise = torch.randn(len(TIMES), 8, generator=generator), torch.randn(len(TIMES), 8, generator=generator)
    x_t = pre.sde.perturb(x, TIMES.float(), noise)
    target = pre.target(x_t, TIMES.float(), noise)
    torch.testing.assert_close(pre.noise(x_t, TIMES.float(), target), noise, rtol=0, atol=2e-5)
    if prediction == "epsilon":
        assert torch.equal(target, noise) and torch.equal(pre.network_input(x_t, TIMES.float()), x_t)


@pytest.mark.parametrize("prediction,sigma_data", [("edm", 1.0), ("edm", 0.5), ("epsilon", 1.0), ("x0", 1.0)])
def test_the_output_of_an_estimate_gives_that_estimate_back_through_tweedie(prediction: str, sigma_data: float) -> None:
    """What `diffusion.gaussian_base` adds to the network: the F whose ε̂ Tweedie's formula turns into a given x̂, at
    every noise level from t = 0 (σ = η) to t = 1 (μ = η)."""
    pre = Preconditioning(VPSDE(), prediction, sigma_data)
    generator = torch.Generator().manual_seed(5)
    x_t = torch.randn(len(TIMES), 8, generator=generator, dtype=torch.float64)
    estimate = torch.randn(len(TIMES), 8, generator=generator, dtype=torch.float64)
    output = pre.output_of_estimate(x_t, TIMES, estimate)
    eps = pre.noise(x_t, TIMES, output)
    torch.testing.assert_close(eps, (x_t - pre.sde.mu(TIMES)[:, None] * estimate) / pre.sde.sigma(TIMES)[:, None],
                               rtol=1e-9, atol=1e-9)


def test_the_x0_target_is_the_clean_state_and_gives_back_the_true_noise() -> None:
    """In fp64: ε̂ = (x_t − μ F) / σ divides by σ = η = 10⁻³ at t = 0, so fp32 rounding grows 1000-fold there (harmless
    to the sampler, which multiplies ε̂ by σ again)."""
    pre = Preconditioning(VPSDE(), "x0")
    generator = torch.Generator().manual_seed(1)
    x, noise = (torch.randn(len(TIMES), 8, generator=generator, dtype=torch.float64) for _ in range(2))
    x_t = pre.sde.perturb(x, TIMES, noise)
    target = pre.target(x_t, TIMES, noise)
    torch.testing.assert_close(target, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(pre.noise(x_t, TIMES, target), noise, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sigma_data", [1.0, 0.3])
def test_the_edm_target_has_unit_variance_at_every_noise_level(sigma_data: float) -> None:
    """For data of standard deviation σ_d, both the network's input and its target."""
    pre = Preconditioning(VPSDE(), "edm", sigma_data)
    generator = torch.Generator().manual_seed(2)
    x = sigma_data * torch.randn(len(TIMES), 200_000, generator=generator, dtype=torch.float64)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    x_t = pre.sde.perturb(x, TIMES, noise)
    # Three standard errors of a variance from 200,000 samples: 3 √(2 / 200000) = 0.0095.
    torch.testing.assert_close(pre.target(x_t, TIMES, noise).var(1), torch.ones(len(TIMES), dtype=torch.float64),
                               rtol=0, atol=0.0095)
    torch.testing.assert_close(pre.network_input(x_t, TIMES).var(1), torch.ones(len(TIMES), dtype=torch.float64),
                               rtol=0, atol=0.0095)


def test_an_output_error_moves_the_clean_state_estimate_by_at_most_itself_under_edm_but_by_sigma_over_mu_under_epsilon(
) -> None:
    """The divergence measured on a 400-step ε-prediction prior: at t = 1, Tweedie's x̂ = (x_t − σ ε̂)/μ multiplies
    an ε̂ error by σ/μ ≈ 1000."""
    sde, t = VPSDE(), torch.tensor([1.0, 0.5, 0.02], dtype=torch.float64)
    x_t, error = torch.zeros(3, 1, dtype=torch.float64), torch.full((3, 1), 0.1, dtype=torch.float64)
    shift = {p: (sde.denoise(x_t, t[:, None], Preconditioning(sde, p).noise(x_t, t, error).double())
                 - sde.denoise(x_t, t[:, None], Preconditioning(sde, p).noise(x_t, t, 0 * error).double())).abs()[:, 0]
             for p in ("edm", "epsilon")}
    mu, sigma = sde.mu(t), sde.sigma(t)
    torch.testing.assert_close(shift["edm"], 0.1 * sigma / (mu**2 + sigma**2).sqrt(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(shift["epsilon"], 0.1 * sigma / mu, rtol=1e-5, atol=1e-7)
    assert shift["epsilon"][0] > 990 * 0.1 and shift["edm"][0] <= 0.1


def test_the_default_sampler_samples_unit_gaussian_data_from_its_exact_denoiser() -> None:
    """A zero EDM network is the exact denoiser here (above), so what is left is the sampler's own error. Measured:
    32 DDIM steps alone give a standard deviation of 0.957; one Langevin corrector at τ = 0.5 (SDA's) gives 1.118,
    at τ = 0.1 1.016, at the default τ = 0.05 0.996."""
    settings = DiffusionConfig()
    sde = VPSDE(settings.eta)
    pre = Preconditioning(sde, "edm")
    samples = sde.sample(lambda x, t: pre.noise(x, t, torch.zeros_like(x)), (400, 4096), settings.steps,
                         settings.corrections, settings.tau, generator=torch.Generator().manual_seed(3),
                         dtype=torch.float64)
    assert abs(samples.mean().item()) < 0.003 and abs(samples.std().item() - 1) < 0.01


def test_a_warm_started_sampler_keeps_the_data_distribution_and_remembers_its_first_guess() -> None:
    """First guesses drawn from the data, noised to t₀ = 0.5, are the exact marginal there, so the samples must be
    unit Gaussian again. What a sample keeps of its first guess: the reverse SDE draws p(x | x_t₀), whose
    correlation with the first guess is μ(t₀)² = 0.266; the Langevin correctors mix each level further, so less
    (measured 0.220), and a sampler that ignored the first guess would keep none."""
    settings = DiffusionConfig()
    sde = VPSDE(settings.eta)
    pre = Preconditioning(sde, "edm")
    generator = torch.Generator().manual_seed(3)
    first_guess = torch.randn(400, 4096, generator=generator, dtype=torch.float64)
    samples = sde.sample(lambda x, t: pre.noise(x, t, torch.zeros_like(x)), (400, 4096), settings.steps,
                         settings.corrections, settings.tau, generator=generator, dtype=torch.float64,
                         start=first_guess, start_time=0.5)
    assert abs(samples.mean().item()) < 0.003 and abs(samples.std().item() - 1) < 0.01
    mu = sde.mu(torch.tensor(0.5)).item()
    kept = torch.corrcoef(torch.stack([samples.ravel(), first_guess.ravel()]))[0, 1].item()
    assert 0.8 * mu**2 < kept < mu**2


def test_a_warm_start_keeps_the_step_size_and_takes_what_is_left_of_the_way() -> None:
    seen = []
    VPSDE().sample(lambda x, t: seen.append(round(t.item(), 6)) or torch.zeros_like(x), (2, 3), steps=32,
                   start=torch.zeros(2, 3), start_time=0.25)
    assert seen == [round(0.25 - i / 32, 6) for i in range(8)]


@pytest.mark.parametrize("start, start_time", [(torch.zeros(2), 1.0), (None, 0.5), (torch.zeros(2), 0.0)])
def test_a_first_guess_and_a_start_time_below_one_come_together(start: torch.Tensor | None, start_time: float) -> None:
    with pytest.raises(ValueError, match="a first guess needs 0 < start_time < 1"):
        VPSDE().sample(lambda x, t: x, (2,), steps=4, start=start, start_time=start_time)


def test_an_unknown_prediction_is_refused() -> None:
    with pytest.raises(ValueError, match="prediction must be one of"):
        Preconditioning(VPSDE(), "v")
