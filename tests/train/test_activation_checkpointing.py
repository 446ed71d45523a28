"""Activation checkpointing (`parallel.activation_checkpointing`) changes memory, not math: for every mixer, through
the training engine, the loss and every parameter's gradient equal those without it (≤ 1e-6 relative), and so
does the next step's loss after the optimizer has used those gradients. The switch must really recompute: each
mixer runs its forward twice per step with it (forward, then again in backward) and once without.
"""

from __future__ import annotations

import pytest
import torch

from multiprocess import run_ranks
from tiny_run import MIXERS

TOLERANCE = 1e-6
FRAME, T_IN, T_OUT, BATCH = (1, 8, 16), 8, 2, 2


def _one_step(mixer: str, recompute: bool, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    from megageo.config import load_config
    from megageo.model.registry import MIXERS as LAYERS
    from megageo.train.engine import Layout, TrainEngine

    config = load_config(None, [
        f"model.mixer={MIXERS[mixer]}", "model.head=absolute", "model.hidden_size=32", "model.num_layers=2",
        f"data.t_in={T_IN}", f"data.t_out={T_OUT}", f"train.global_batch_size={BATCH}", f"train.micro_batch_size={BATCH}",
        "train.precision=fp32", "train.lr=1e-2", "train.warmup_steps=0", "train.steps=2",
        f"parallel.activation_checkpointing={str(recompute).lower()}",
    ])
    trainer = TrainEngine(config, Layout(1, 1, 1, 0), FRAME)
    engine = trainer.engine
    mixer_calls = []
    for module in engine.module.modules():
        if type(module) in LAYERS.values():
            module.register_forward_pre_hook(lambda *_: mixer_calls.append(1))  # recomputation may stop early
    (x, y), next_batch = batches
    loss = torch.nn.functional.mse_loss(engine(x), y)
    engine.backward(loss)
    gradients = {name: p.grad.detach().numpy().copy() for name, p in engine.module.named_parameters()}  # picklable
    calls = len(mixer_calls)
    engine.step()
    return {"loss": float(loss), "gradients": gradients, "mixer_calls": calls,
            "next_loss": trainer.train_step([next_batch])}


def _compare_all() -> dict:
    from megageo.parallel import groups

    groups.initialize_single_process()
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(BATCH, T_IN, *FRAME, generator=generator),
                torch.randn(BATCH, T_OUT, *FRAME, generator=generator)) for _ in range(2)]
    return {(mixer, recompute): _one_step(mixer, recompute, batches) for mixer in MIXERS for recompute in (False, True)}


@pytest.fixture(scope="module")
def runs() -> dict:
    (results,) = run_ranks(_compare_all, 1)
    return results


def relative(a, b) -> float:
    return float(abs(a - b).max() / abs(b).max())


@pytest.mark.slow
@pytest.mark.parametrize("mixer", list(MIXERS))
def test_recomputing_blocks_gives_the_same_loss_and_gradients(runs, mixer: str) -> None:
    plain, recomputed = runs[mixer, False], runs[mixer, True]
    assert (plain["mixer_calls"], recomputed["mixer_calls"]) == (2, 4)  # 2 blocks: once each, or again in backward
    assert abs(recomputed["loss"] - plain["loss"]) <= TOLERANCE * plain["loss"]
    assert recomputed["gradients"].keys() == plain["gradients"].keys()
    nonzero = [name for name, grad in plain["gradients"].items() if abs(grad).max() > 0]
    assert len(nonzero) >= 0.9 * len(plain["gradients"]), "most parameters should receive a gradient"
    worst = max(relative(recomputed["gradients"][name], plain["gradients"][name]) for name in nonzero)
    assert worst <= TOLERANCE, f"{mixer}: gradients differ by {worst:.2e}"
    assert abs(recomputed["next_loss"] - plain["next_loss"]) <= TOLERANCE * plain["next_loss"]
    assert recomputed["next_loss"] != plain["loss"]  # the optimizer step did change the weights
