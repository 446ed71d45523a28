"""The variance-preserving diffusion of score-based data assimilation (Rozet & Louppe, 2023) and its sampler.

x_t = μ(t) x + σ(t) ε with the cosine schedule μ(t) = cos(arccos(√η) t)², σ(t) = √(1 − μ(t)² + η²), t ∈ [0, 1]:
μ(0) = 1 and σ(0) = η (almost the data), μ(1) = η (almost pure noise). A denoiser predicts ε from (x_t, t);
Tweedie's formula turns it into the clean-state estimate E[x | x_t] = (x_t − σ ε̂) / μ, which is what observations
are compared with (`megageo.da.guidance`). The sampler is SDA's predictor–corrector: an exponential-integrator
(DDIM) step from t to t − Δt, then `corrections` Langevin steps at t − Δt.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

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
               progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """Samples of shape `shape` (members first), from pure noise at t = 1 down to t = 0."""
        if steps < 1 or corrections < 0:
            raise ValueError(f"need steps >= 1 and corrections >= 0, got {steps} and {corrections}")
        x = torch.randn(shape, generator=generator, dtype=dtype)
        times = torch.linspace(1, 0, steps + 1, dtype=dtype)
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
