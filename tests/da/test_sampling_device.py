"""On a GPU the denoiser runs there while the sampler's state stays on the CPU, where its generator draws
(`megageo.da.denoiser.noise_predictor`): a guided ensemble must be the same draw as on the CPU alone."""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_a_guided_ensemble_is_the_same_draw_with_the_denoiser_on_the_gpu() -> None:
    from megageo.config import DiffusionConfig, ModelConfig
    from megageo.da.denoiser import Denoiser
    from megageo.da.observations import ObservationOperator
    from megageo.da.posterior import sample_posterior
    from megageo.da.sde import VPSDE, Preconditioning
    from megageo.mixer_configs import GlobalLinearConfig
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel import groups

    groups.initialize_single_process()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    config = ModelConfig(mixer=GlobalLinearConfig(num_heads=2, head_dim=4, grid_conv_size=3), num_layers=2,
                         hidden_size=8, tokens="patch", patch_size=4, head_conv_size=3)
    ctx = TensorParallelContext.current(False, config.init_std, config.num_layers)
    model = Denoiser(config, (1, 8, 8), ctx, Preconditioning(VPSDE(1e-3)))
    initialize_parameters(model, seed=3, tp=1, rank=0)
    model.eval()
    observe = ObservationOperator(torch.tensor([0, 9, 27, 63, 100, 200, 255]))
    y, std = torch.linspace(-1, 1, 7), torch.full((7,), 0.1)
    settings = DiffusionConfig(steps=6, corrections=1, guidance="gaussian")

    def draw() -> torch.Tensor:
        return sample_posterior(model, settings, (3, 4, 1, 8, 8), observe, y, std, torch.Generator().manual_seed(5))

    on_cpu = draw()
    model.cuda()
    on_gpu = draw()
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
