"""The training objective's options: cell-area and lead weights (hand-computed), the residual head through the
pipeline engine (equal to one process), and training through the model's own rollout (equal to a rollout
written out by hand, with gradients through the feedback)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from multiprocess import run_ranks
from tiny_run import build_tiny_store, run_training, tiny_overrides

# lat = [90, 0, -90]: cell areas 1 − sin 45°, 2 sin 45°, 1 − sin 45° (sum 2), so the mean-1 weights are 3/2 × areas.
POLE = 1.5 * (1 - math.sqrt(0.5))
EQUATOR = 3 * math.sqrt(0.5)


def config(*overrides: str):
    from megageo.config import load_config

    return load_config(None, ["data.t_out=2", *overrides])


def test_the_papers_setting_has_no_weights() -> None:
    from megageo.train.objective import loss_weights

    assert loss_weights(config("train.latitude_weighted_loss=false"), np.array([90.0, 0.0, -90.0])) is None


def test_weights_are_cell_areas_times_lead_weights_of_mean_one() -> None:
    from megageo.train.objective import loss_weights

    weights = loss_weights(config("train.latitude_weighted_loss=true", "train.lead_weights=[1,3]"),
                           np.array([90.0, 0.0, -90.0]))
    assert weights.shape == (2, 1, 3, 1)
    expected = [[0.5 * POLE, 0.5 * EQUATOR, 0.5 * POLE], [1.5 * POLE, 1.5 * EQUATOR, 1.5 * POLE]]
    np.testing.assert_allclose(weights[:, 0, :, 0].numpy(), expected, rtol=1e-6)
    only_leads = loss_weights(config("train.latitude_weighted_loss=false", "train.lead_weights=[2,2]"),
                              np.array([90.0, 0.0, -90.0]))
    assert torch.equal(only_leads, torch.ones(2, 1, 3, 1))


def test_weighted_loss_is_the_weighted_mean_of_squared_errors() -> None:
    from megageo.model.forecaster import forecast_loss

    prediction = torch.zeros(1, 2, 1, 3, 4)
    target = torch.zeros(1, 2, 1, 3, 4)
    target[0, 1, 0, 1] = 2.0  # the equator row of the second lead is 2 off: squared error 4 at 4 of 24 points
    weights = torch.tensor([0.5, 1.5])[:, None, None, None] * torch.tensor([POLE, EQUATOR, POLE])[None, None, :, None]
    assert forecast_loss(prediction, target, weights).item() == pytest.approx(4 * 4 * 1.5 * EQUATOR / 24, rel=1e-6)
    assert forecast_loss(prediction, target).item() == pytest.approx(4 * 4 / 24, rel=1e-6)


def _train(store: Path, out: Path, layouts: dict[str, dict]) -> dict[str, list[float]]:
    return {name: run_training(tiny_overrides(store, out / name, **settings)) for name, settings in layouts.items()}


RESIDUAL = dict(model__head="residual", train__latitude_weighted_loss=True, train__lead_weights="[1,2]")


@pytest.mark.slow
def test_residual_head_and_weights_through_the_pipeline_equal_one_process(tmp_path) -> None:
    store = build_tiny_store(tmp_path)
    (single,) = run_ranks(_train, 1, store, tmp_path / "single", {"single": RESIDUAL})
    pipelined = run_ranks(_train, 2, store, tmp_path / "pp2", {"pp2": {**RESIDUAL, "parallel__pipeline_parallel": 2}})
    reference = single["single"]
    assert len(reference) == 5 and reference[-1] < reference[0]
    for losses in (pipelined[0]["pp2"], pipelined[1]["pp2"]):
        assert max(abs(a - b) / b for a, b in zip(losses, reference, strict=True)) <= 1e-5


def _rollout_check(store: Path, out: Path) -> dict[str, float]:
    """The engine's forecast and losses under `train.rollout_steps=2` against the same rollout written out here,
    and how much of the gradient flows through the fed-back forecast."""
    from megageo.config import load_config
    from megageo.model.forecaster import forecast_loss
    from megageo.model.rollout import rollout
    from megageo.parallel import groups
    from megageo.train.engine import Layout, TrainEngine

    groups.initialize(1, 1)
    cfg = load_config(None, tiny_overrides(store, out, train__rollout_steps=2, model__head="absolute"))
    engine = TrainEngine(cfg, Layout.of(cfg.parallel, 1), (1, 8, 16))
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 8, 1, 8, 16, generator=generator), torch.randn(2, 4, 1, 8, 16, generator=generator)
    model = engine.engine.module
    with torch.no_grad():
        first = model(x)
        by_hand = torch.cat([first, model(torch.cat([x[:, 2:], first], dim=1))], dim=1)
        through_engine = rollout(engine.engine, x, 4)  # what the forecast task's loss runs on the engine
    hand_loss = forecast_loss(by_hand, y).item()
    evaluated = engine.evaluate([(x, y)])
    trained = engine.train_step([(x, y)])  # the loss of the weights before the update

    weight = torch.nn.Parameter(model.input.proj.weight.detach().clone())  # a copy outside DeepSpeed's hooks
    original = model.input.proj.weight
    model.input.proj.weight = weight
    through = torch.autograd.grad(forecast_loss(rollout(model, x, 4), y), weight)[0]
    first = model(x)
    cut = torch.cat([first, model(torch.cat([x[:, 2:], first.detach()], dim=1))], dim=1)
    detached = torch.autograd.grad(forecast_loss(cut, y), weight)[0]
    model.input.proj.weight = original
    return {
        "forecast": float((through_engine - by_hand).abs().max()),
        "evaluate": abs(evaluated - hand_loss) / hand_loss,
        "train_step": abs(trained - hand_loss) / hand_loss,
        "feedback_share": float((through - detached).norm() / through.norm()),
    }


def test_rollout_training_scores_every_lead_with_gradients_through_the_feedback(tmp_path) -> None:
    store = build_tiny_store(tmp_path)
    (errors,) = run_ranks(_rollout_check, 1, store, tmp_path / "run")
    assert errors["forecast"] <= 1e-6
    assert errors["evaluate"] <= 1e-6
    assert errors["train_step"] <= 1e-6
    assert errors["feedback_share"] >= 1e-3  # the fed-back forecast's own gradient is really there


def test_objective_settings_are_checked_before_any_work() -> None:
    from megageo.errors import MegageoError

    with pytest.raises(MegageoError, match="model.head must be absolute or residual, got 'delta'"):
        config("model.head=delta")
    with pytest.raises(MegageoError, match=r"train.lead_weights needs 4 non-negative weights.*got \[1.0, 1.0\]"):
        config("train.rollout_steps=2", "train.lead_weights=[1,1]")
    with pytest.raises(MegageoError, match="needs the whole window on one rank"):
        config("train.rollout_steps=2", "parallel.context_parallel=2")
    with pytest.raises(MegageoError, match="train.rollout_steps must be at least 1, got 0"):
        config("train.rollout_steps=0")
