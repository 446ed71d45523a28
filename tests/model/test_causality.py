"""Changing input frame t changes no backbone output before t, and does change the output at t, for every mixer."""

from __future__ import annotations

import pytest
import torch

from tiny_models import BATCH, FRAME, MIXER_SETTINGS, T_IN, T_OUT, tiny_model_config


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()
    yield


def backbone(model, frames: torch.Tensor) -> torch.Tensor:
    x = model.input(frames)
    for block in model.blocks:
        x = block(x)
    return x


@pytest.mark.parametrize("mixer", list(MIXER_SETTINGS))
@pytest.mark.parametrize("changed", [0, 3, T_IN - 1])
def test_no_position_sees_the_future(mixer: str, changed: int) -> None:
    from megageo.model.forecaster import Forecaster
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext

    config = tiny_model_config(mixer)
    model = Forecaster(config, FRAME, T_OUT, TensorParallelContext.current(False, config.init_std, config.num_layers))
    initialize_parameters(model, seed=5, tp=1, rank=0)
    frames = torch.randn(BATCH, T_IN, *FRAME, generator=torch.Generator().manual_seed(0))
    perturbed = frames.clone()
    perturbed[:, changed] += 1.0
    with torch.no_grad():
        before, after = backbone(model, frames), backbone(model, perturbed)
    assert torch.equal(before[:changed], after[:changed])
    assert (before[changed] - after[changed]).abs().max() > 1e-3
