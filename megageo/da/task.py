"""`task: diffusion`: train the denoiser of windows on the VP SDE (Rozet & Louppe's objective, with the
preconditioning `diffusion.prediction` names).

For each window, t ~ U(0, 1) and ε ~ N(0, I) over the whole window; the model sees x_t = μ(t) x + σ(t) ε and is
trained on the output that gives back ε (for `epsilon`, ε itself). Under context parallelism each rank holds a
block of the window's frames, draws the whole window's noise from the generator every rank of the replica shares
and keeps its block, so the objective (the mean over the window, an equal share per rank) and its gradients are
those of the CP=1 run. In training (not evaluation) the windows first take the symmetries `diffusion.augment` names,
drawn after the noise from the same generator.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import torch

from megageo.config import Config
from megageo.da.augment import augment
from megageo.da.denoiser import Denoiser
from megageo.da.gaussian_prior import fit_from_store
from megageo.da.sde import VPSDE, Preconditioning
from megageo.model.forecaster import forecast_loss
from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.context import ContextParallel


class DiffusionTask:
    def __init__(self, config: Config):
        self.config = config
        self.preconditioning = Preconditioning(VPSDE(config.diffusion.eta), config.diffusion.prediction,
                                               config.diffusion.sigma_data)

    def build(self, frame_shape: tuple[int, int, int], ctx: TensorParallelContext) -> torch.nn.Module:
        gaussian = cache(partial(fit_from_store, self.config)) if self.config.diffusion.gaussian_base else None
        return Denoiser(self.config.model, frame_shape, ctx, self.preconditioning, gaussian)

    def loss(self, model: Any, x: torch.Tensor, y: torch.Tensor, cp: ContextParallel,
             weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        batch, steps = x.shape[:2]
        t = torch.rand(batch, generator=generator, dtype=torch.float64).float()
        window = torch.randn((batch, steps * cp.size, *x.shape[2:]), generator=generator)
        noise = window[:, cp.rank * steps : (cp.rank + 1) * steps].to(x.device)
        t = t.to(x.device)
        if model.training and self.config.diffusion.augment:
            x = augment(x, self.config.diffusion.augment, generator)
        x_t = self.preconditioning.sde.perturb(x.float(), t, noise)
        output = model(x_t, t)
        target = self.preconditioning.target(x_t, t, noise)
        return forecast_loss(output, target, None if weights is None else weights[:1])
