"""A two-block denoiser of 8 × 8 frames with every part the tiny prior has (grid and head convolutions), and
observations of seven of a four-frame window's grid points: the sampler's tests draw from it."""

from __future__ import annotations

from collections.abc import Callable

import torch

WINDOW_SHAPE = (4, 1, 8, 8)


def tiny_denoiser(gaussian: Callable | None = None, head_conv_size: int = 3) -> torch.nn.Module:
    """`gaussian`: the `diffusion.gaussian_base` prior's fit, if any."""
    from megageo.config import ModelConfig
    from megageo.da.denoiser import Denoiser
    from megageo.da.sde import VPSDE, Preconditioning
    from megageo.mixer_configs import GlobalLinearConfig
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel import groups

    groups.initialize_single_process()
    config = ModelConfig(mixer=GlobalLinearConfig(num_heads=2, head_dim=4, grid_conv_size=3), num_layers=2,
                         hidden_size=8, tokens="patch", patch_size=4,
                         head_conv_size=head_conv_size)
    ctx = TensorParallelContext.current(False, config.init_std, config.num_layers)
    model = Denoiser(config, WINDOW_SHAPE[1:], ctx, Preconditioning(VPSDE(1e-3)), gaussian)
    initialize_parameters(model, seed=3, tp=1, rank=0)
    return model.eval()


def stations() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices into a window, observed values and their error stds."""
    return torch.tensor([0, 9, 27, 63, 100, 200, 255]), torch.linspace(-1, 1, 7), torch.full((7,), 0.1)
