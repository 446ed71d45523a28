"""TP=2 (SP off and on) computes what TP=1 computes: same outputs and, after gathering shards, same gradients.

The TP=2 weights are the TP=1 weights sharded by each parameter's declared partition, so this checks the
column/row layers, the per-segment splits of fused projections, the head-split convs, decays and norms, and
the gradient all-reduces of replicated parameters, for every mixer.
"""

from __future__ import annotations

import pytest
import torch

from multiprocess import run_ranks
from tiny_models import BATCH, FRAME, MIXER_SETTINGS, T_IN, T_OUT, tiny_model_config

TOLERANCE = 1e-5


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-30))


def _forward_backward(mixer: str, sequence_parallel: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from megageo.model.forecaster import Forecaster, forecast_loss
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel import groups

    config = tiny_model_config(mixer)
    ctx = TensorParallelContext.current(sequence_parallel, config.init_std, config.num_layers)
    model = Forecaster(config, FRAME, T_OUT, ctx)
    initialize_parameters(model, seed=7, tp=ctx.tp, rank=ctx.rank)
    generator = torch.Generator().manual_seed(3)
    frames = torch.randn(BATCH, T_IN, *FRAME, generator=generator)
    target = torch.randn(BATCH, T_OUT, *FRAME, generator=generator)
    prediction = model(frames)
    forecast_loss(prediction, target).backward()
    grads = {name: _gather_full(param.grad, param, groups.tp_size()) for name, param in model.named_parameters()}
    return prediction.detach(), grads


def _gather_full(grad: torch.Tensor, param: torch.Tensor, tp: int) -> torch.Tensor:
    from megatron.core import parallel_state

    from megageo.parallel.partition import partition_of

    partition = partition_of(param)
    if partition is None or tp == 1:
        return grad.clone()
    shards = [torch.empty_like(grad) for _ in range(tp)]
    torch.distributed.all_gather(shards, grad.contiguous(), group=parallel_state.get_tensor_model_parallel_group())
    return partition.unshard(shards)


def _compare_layouts(mixers: list[str]) -> dict[tuple[str, bool], tuple[float, float]]:
    from megageo.parallel import groups

    errors = {}
    for mixer in mixers:
        groups.initialize(tensor_parallel=1)
        reference_output, reference_grads = _forward_backward(mixer, sequence_parallel=False)
        groups.initialize(tensor_parallel=2)
        for sequence_parallel in (False, True):
            output, grads = _forward_backward(mixer, sequence_parallel)
            grad_error = max(relative_error(grads[name], reference_grads[name]) for name in reference_grads)
            errors[mixer, sequence_parallel] = (relative_error(output, reference_output), grad_error)
    groups.shutdown()
    return errors


@pytest.fixture(scope="module")
def layout_errors() -> dict[tuple[str, bool], tuple[float, float]]:
    per_rank = run_ranks(_compare_layouts, 2, list(MIXER_SETTINGS))
    return {key: max(rank[key] for rank in per_rank) for key in per_rank[0]}


@pytest.mark.slow
@pytest.mark.parametrize("sequence_parallel", [False, True], ids=["tp2", "tp2-sp"])
@pytest.mark.parametrize("mixer", list(MIXER_SETTINGS))
def test_tp2_matches_tp1(layout_errors, mixer: str, sequence_parallel: bool) -> None:
    output_error, grad_error = layout_errors[mixer, sequence_parallel]
    assert output_error <= TOLERANCE, f"output differs from TP=1 by {output_error:.2e}"
    assert grad_error <= TOLERANCE, f"a gathered gradient differs from TP=1 by {grad_error:.2e}"
