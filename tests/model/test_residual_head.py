"""The residual head forecasts the change from the last input frame and starts from persistence."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny_models import BATCH, FRAME, T_IN, T_OUT, tiny_model_config


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()


def build_model(mixer: str, head: str) -> torch.nn.Module:
    from megageo.model.forecaster import unsharded_forecaster
    from megageo.model.init import initialize_parameters

    model = unsharded_forecaster(dataclasses.replace(tiny_model_config(mixer), head=head), FRAME, T_OUT)
    initialize_parameters(model, seed=0, tp=1, rank=0)
    return model


def test_an_untrained_residual_model_forecasts_persistence_at_every_lead() -> None:
    model = build_model("gla", head="residual")
    frames = torch.randn(BATCH, T_IN, *FRAME)
    forecast = model(frames)
    assert forecast.shape == (BATCH, T_OUT, *FRAME)
    assert torch.equal(forecast, frames[:, -1:].expand(-1, T_OUT, -1, -1, -1))


def test_the_residual_head_learns_from_the_first_step() -> None:
    model = build_model("gla", head="residual")
    frames = torch.randn(BATCH, T_IN, *FRAME)
    (model(frames) - frames[:, -1:] - 1.0).square().mean().backward()
    assert model.head.proj.weight.grad.abs().max() > 0
    assert model.head.proj.bias.grad.abs().max() > 0


def test_the_absolute_head_does_not_start_from_persistence() -> None:
    model = build_model("gla", head="absolute")
    frames = torch.randn(BATCH, T_IN, *FRAME)
    assert not torch.allclose(model(frames), frames[:, -1:].expand(-1, T_OUT, -1, -1, -1), atol=1e-3)
