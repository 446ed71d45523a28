"""The variance-preserving diffusion of score-based data assimilation (Rozet & Louppe, 2023) and its sampler.

x_t = μ(t) x + σ(t) ε with the cosine schedule μ(t) = cos(arccos(√η) t)², σ(t) = √(1 − μ(t)² + η²), t ∈ [0, 1]:
μ(0) = 1 and σ(0) = η (almost the data), μ(1) = η (almost pure noise). A denoiser predicts ε from (x_t, t);
Tweedie's formula turns it into the clean-state estimate E[x | x_t] = (x_t − σ ε̂) / μ, which is what observations
are compared with (`megageo.da.guidance`). The sampler is SDA's predictor–corrector: an exponential-integrator
(DDIM) step from t to t − Δt, then `corrections` Langevin steps at t − Δt.

`Preconditioning` says what the network's output F means. Predicting ε directly (SDA's choice) makes Tweedie's
estimate divide the network's error by μ(t), which is η = 10⁻³ at t = 1: measured on a 400-step tiny prior, an ε̂
error of 0.15 became an x̂ error of 153 data standard deviations at t = 1, and the sampler diverged. EDM's
preconditioning (Karras et al. 2022, in its VP form) has the network predict the clean state's residual at unit
variance for every t, so that error stays bounded by the data's own scale. But its skip term carries x_t's white
noise into the estimate, and the network must cancel it point by point: measured on a 400-step tiny prior, its x̂
at t ≥ 0.2 was three times rougher than the data. `x0` has the network write the clean state itself, with no skip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from megageo.config import PREDICTIONS

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""`(x_t [N, ...], t scalar tensor) → ε̂ [N, ...]`."""


@dataclass(frozen=True)
class VPSDE:
    eta: float = 1e-3

    def mu(self, t: torch.Tensor) -> torch.Tensor:
        return torch.cos(math.acos(math.sqrt(self.eta)) * t) ** 2

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.mu(t) ** 2 + self.eta**2).sqrt()

    def perturb(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t for clean states `x` [N, ...] at times `t` [N] with standard normal `noise`."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        return self.mu(t).view(shape) * x + self.sigma(t).view(shape) * noise

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Tweedie's clean-state estimate from a noise prediction."""
        return (x_t - self.sigma(t) * eps) / self.mu(t)

    def sample(self, eps: NoisePredictor, shape: tuple[int, ...], steps: int = 64, corrections: int = 0,
               tau: float = 1.0, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
               progress: Callable[[int], None] | None = None, start: torch.Tensor | None = None,
               start_time: float = 1.0) -> torch.Tensor:
        """Samples of shape `shape` (members first), from pure noise at t = 1 down to t = 0; or, given a first
        guess `start` (broadcast to `shape`), from it noised to `start_time` (SDEdit, Meng et al. 2022), in the
        ⌈steps · start_time⌉ steps of the same size that the rest of the way takes."""
        if steps < 1 or corrections < 0:
            raise ValueError(f"need steps >= 1 and corrections >= 0, got {steps} and {corrections}")
        if not 0 < start_time <= 1 or (start is None) != (start_time == 1):
            raise ValueError(f"a first guess needs 0 < start_time < 1 and start_time < 1 a first guess; got "
                             f"start_time {start_time} {'with' if start is not None else 'without'} one")
        x = torch.randn(shape, generator=generator, dtype=dtype)
        if start is not None:
            begin = torch.tensor(start_time, dtype=dtype)
            x = self.mu(begin) * start.to(dtype) + self.sigma(begin) * x
            steps = math.ceil(steps * start_time)
        times = torch.linspace(start_time, 0, steps + 1, dtype=dtype)
        for index, (t, s) in enumerate(zip(times[:-1], times[1:])):
            ratio = self.mu(s) / self.mu(t)
            x = ratio * x + (self.sigma(s) - ratio * self.sigma(t)) * eps(x, t)
            for _ in range(corrections):
                noise = torch.randn(shape, generator=generator, dtype=dtype)
                predicted = eps(x, s)
                delta = tau / predicted.square().flatten(1).mean(1).view((-1,) + (1,) * (x.dim() - 1))
                x = x - (delta * predicted + torch.sqrt(2 * delta) * noise) * self.sigma(s)
            if progress is not None:
                progress(index)
        return x


@dataclass(frozen=True)
class Preconditioning:
    """The network F sees c_in(t) x_t; its output becomes ε̂ = a(t) x_t + b(t) F, and it is trained on the F
    that gives ε̂ = ε, with unit weight. With s² = μ² + σ² and, for `edm`, d² = μ² σ_d² + σ²:
    - `edm`: c_in = 1/d and x̂ = (μ σ_d²/d²) x_t + (σ σ_d/d) F, so a = σ/d², b = −μ σ_d/d: the skip is the
      exact denoiser of N(0, σ_d²) data and F's target has unit variance for such data. With σ_d < 1 the skip
      fades at lower noise, so less of x_t's white noise reaches x̂ for the network to cancel;
    - `epsilon`: c_in = 1, a = 0, b = 1 (F is ε̂, its target ε);
    - `x0`: c_in = 1/s and x̂ = F, so a = 1/σ, b = −μ/σ (F's target is the clean state).
    Training F with unit weight is ε-prediction weighted by 1/b²: d²/(μ² σ_d²) for `edm`, σ²/μ² for `x0`."""

    sde: VPSDE
    prediction: str = "edm"
    sigma_data: float = 1.0
    """σ_d, the data's standard deviation as `edm`'s skip assumes it."""

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")

    def _coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, sigma = self.sde.mu(t), self.sde.sigma(t)
        if self.prediction == "epsilon":
            return torch.ones_like(mu), torch.zeros_like(mu), torch.ones_like(mu)
        if self.prediction == "x0":
            return 1 / (mu**2 + sigma**2).sqrt(), 1 / sigma, -mu / sigma
        scale = (mu**2 * self.sigma_data**2 + sigma**2).sqrt()
        return 1 / scale, sigma / scale**2, -mu * self.sigma_data / scale

    @staticmethod
    def _per_sample(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return value.view((-1,) + (1,) * (like.dim() - 1)) if value.dim() else value

    def network_input(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._per_sample(self._coefficients(t)[0], x_t) * x_t

    def _output_map(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b) per sample and x_t in fp32, or in x_t's own wider precision, whatever the network's precision."""
        _, a, b = (self._per_sample(c, x_t) for c in self._coefficients(t))
        return a, b, x_t.to(torch.promote_types(x_t.dtype, torch.float32))

    def noise(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """ε̂ from the network's output."""
        a, b, x_t = self._output_map(x_t, t)
        return a * x_t + b * output.to(x_t.dtype)

    def output_of_estimate(self, x_t: torch.Tensor, t: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
        """The output F for which Tweedie's estimate from `noise(x_t, t, F)` is `estimate`, written so that no
        coefficient divides by μ(t) (η at t = 1): with ε̂ = (x_t − μ x̂)/σ, `edm`'s F = d/(σ σ_d) (x̂ − μ σ_d² x_t/d²)."""
        mu, sigma = (self._per_sample(c, x_t) for c in (self.sde.mu(t), self.sde.sigma(t)))
        if self.prediction == "epsilon":
            return (x_t - mu * estimate) / sigma
        if self.prediction == "x0":
            return estimate
        scale = (mu**2 * self.sigma_data**2 + sigma**2).sqrt()
        return scale / (sigma * self.sigma_data) * (estimate - mu * self.sigma_data**2 / scale**2 * x_t)

    def target(self, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The output for which `noise(x_t, t, output)` is the true ε."""
        a, b, x_t = self._output_map(x_t, t)
        return (noise.to(x_t.dtype) - a * x_t) / b
