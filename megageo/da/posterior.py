"""Posterior ensembles: the trained prior's sampler, guided by observations, in the model's normalised units."""

from __future__ import annotations

from collections.abc import Callable

import torch

from megageo.config import DiffusionConfig
from megageo.da.denoiser import noise_predictor
from megageo.da.guidance import GaussianGuidance, MomentMatchingGuidance, Observe
from megageo.da.sde import VPSDE


def sample_posterior(denoiser: torch.nn.Module, settings: DiffusionConfig, shape: tuple[int, ...],
                     observe: Observe | None, y: torch.Tensor | None, std: torch.Tensor | None,
                     generator: torch.Generator, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """`shape[0]` members [N, L, C, H, W] of p(x | y), or of the prior p(x) when `observe` is None."""
    sde = VPSDE(settings.eta)
    eps = noise_predictor(denoiser)
    if observe is not None:
        if settings.guidance == "mmps":
            eps = MomentMatchingGuidance(eps, sde, y, observe, std, settings.cg_steps)
        else:
            eps = GaussianGuidance(eps, sde, y, observe, std, settings.gamma)
    with torch.no_grad():
        return sde.sample(eps, shape, settings.steps, settings.corrections, settings.tau, generator,
                          progress=progress)
