"""On a GPU the denoiser runs there while the sampler's state stays on the CPU, where its generator draws
(`megageo.da.denoiser.noise_predictor`): a guided ensemble must be the same draw as on the CPU alone."""

from __future__ import annotations

import pytest
import torch
from tiny_denoiser import WINDOW_SHAPE, stations, tiny_denoiser

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_a_guided_ensemble_is_the_same_draw_with_the_denoiser_on_the_gpu() -> None:
    from megageo.config import DiffusionConfig
    from megageo.da.observations import ObservationOperator
    from megageo.da.posterior import sample_posterior

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    model = tiny_denoiser()
    flat_index, y, std = stations()
    settings = DiffusionConfig(steps=6, corrections=1, guidance="gaussian")

    def draw() -> torch.Tensor:
        return sample_posterior(model, settings, (3, *WINDOW_SHAPE), ObservationOperator(flat_index), y, std,
                                torch.Generator().manual_seed(5))

    on_cpu = draw()
    model.cuda()
    on_gpu = draw()
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
