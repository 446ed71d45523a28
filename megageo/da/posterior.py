"""Posterior ensembles: the trained prior's sampler, guided by observations, in the model's normalised units."""

from __future__ import annotations

from collections.abc import Callable

import torch

from megageo.config import DiffusionConfig
from megageo.da.denoiser import base_jacobian, noise_predictor
from megageo.da.guidance import GaussianGuidance, MomentMatchingGuidance, Observe
from megageo.da.sde import VPSDE, NoisePredictor


def sample_posterior(denoiser: torch.nn.Module, settings: DiffusionConfig, shape: tuple[int, ...],
                     observe: Observe | None, y: torch.Tensor | None, std: torch.Tensor | None,
                     generator: torch.Generator, progress: Callable[[int], None] | None = None,
                     start: torch.Tensor | None = None) -> torch.Tensor:
    """`shape[0]` windows [N, L, C, H, W] of p(x | y) (y [M] shared, or [N, M] each window's own), or of the prior
    p(x) when `observe` is None; with `settings.start_time` < 1, from the first guess `start` [N, L, C, H, W]
    noised to that time. The denoiser sees at most `settings.max_windows` windows a pass: a window's guided
    score involves only its own state and observations, so the draw is the same (MMPS's conjugate gradients then
    run per pass rather than over the whole batch)."""
    sde = VPSDE(settings.eta)
    eps = noise_predictor(denoiser)
    jacobian = base_jacobian(denoiser) if settings.guidance_jacobian == "gaussian_base" else None
    if settings.random_shift:
        eps = RandomlyShifted(eps, torch.Generator().manual_seed(generator.initial_seed() + 1))

    def guided(windows: slice) -> NoisePredictor:
        if observe is None:
            return eps
        observed = y if y.dim() == 1 else y[windows]
        if settings.guidance == "mmps":
            return MomentMatchingGuidance(eps, sde, observed, observe, std, settings.cg_steps, jacobian)
        return GaussianGuidance(eps, sde, observed, observe, std, settings.gamma, jacobian)

    def in_passes(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if isinstance(eps, RandomlyShifted):
            eps.draw(x.shape[-1])  # one shift for every pass, so max_windows does not change the draw
        size = settings.max_windows or len(x)
        return torch.cat([guided(slice(start, start + size))(x[start : start + size], t)
                          for start in range(0, len(x), size)])

    with torch.no_grad():
        return sde.sample(in_passes, shape, settings.steps, settings.corrections, settings.tau, generator,
                          progress=progress, start=start, start_time=settings.start_time)


class RandomlyShifted:
    """ε̂ of the state rolled by a random number of longitudes, rolled back: a denoiser trained to be equivariant
    (`diffusion.augment: [zonal_shift]`) is as good at any shift, and drawing a new one at every call moves its
    patch seams (every 8th column of the tiny prior) to a new place at each step, instead of the same columns
    every step. The shifts come from their own generator, so the sampler's noise is the unshifted run's."""

    def __init__(self, eps: NoisePredictor, generator: torch.Generator):
        self.eps, self.generator, self.shift = eps, generator, 0

    def draw(self, width: int) -> None:
        self.shift = int(torch.randint(width, (), generator=self.generator))

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.eps(x.roll(self.shift, dims=-1), t).roll(-self.shift, dims=-1)
