"""Context parallelism computes what one process computes on the whole sequence, for all six mixers.

Each rank builds a mixer layer (fused projection, short conv, kernel, gated norm, output projection; RoPE and
softmax for the Transformer) with the same weights twice: once over the whole sequence (CP=1) and once holding
only its contiguous block. The block's outputs must equal the whole run's slice, and the gradients of the input
and of every parameter (summed over CP ranks, as the data-parallel×CP all-reduce sums them) must equal the whole
run's. The truth is the whole-sequence run in float64. Sequence lengths give blocks longer and shorter than the
64-step chunk, and not multiples of it. Token mixers run over frames of 5 tokens (blocks of whole frames, as the
token model's CP blocks are): frame-causal GLA, Mamba2 and attention, and the non-causal global linear mixer.
"""

from __future__ import annotations

import os

import pytest
import torch

from multiprocess import run_ranks
from tiny_models import MIXER_SETTINGS, tiny_model_config

BLOCK_LENGTHS = {2: 75, 3: 50, 4: 40}
"""Frames per CP rank: 75 = one chunk and a bit; 50 and 40 = shorter than one chunk."""
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
TOKEN_CASES = {"gla frame-causal": "gla", "mamba2 frame-causal": "mamba2", "transformer frame-causal": "transformer",
               "global_linear": "global_linear"}
"""Token-model cases: name → mixer, over frames of `TOKENS_PER_FRAME` tokens."""
TOKENS_PER_FRAME = 5
CASES = {**{mixer: mixer for mixer in MIXER_SETTINGS}, **TOKEN_CASES}
PER_POSITION = ("output", "input grad")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).norm() / expected.double().norm().clamp_min(1e-300))


def _mixer(case: str, cp, dtype: torch.dtype):
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.model.registry import build_mixer
    from megageo.model.sequence import SequenceLayout

    config = tiny_model_config(CASES[case])
    sequence = SequenceLayout(1, TOKENS_PER_FRAME, frame_causal=True) if case in TOKEN_CASES else SequenceLayout()
    ctx = TensorParallelContext(tp=1, rank=0, sequence_parallel=False, init_std=0.2, num_layers=2, cp=cp,
                                sequence=sequence)
    layer = build_mixer(config.mixer, config.hidden_size, ctx, config.norm_eps)
    initialize_parameters(layer, seed=11, tp=1, rank=0)
    return layer.to(dtype)


def _results(layer, x: torch.Tensor, cotangent: torch.Tensor) -> dict[str, torch.Tensor]:
    """Output, input gradient and parameter gradients of `<layer(x), cotangent>`."""
    x = x.clone().requires_grad_()
    out = layer(x)
    (out * cotangent).sum().backward()
    return {"output": out.detach(), "input grad": x.grad, **{f"d{n}": p.grad for n, p in layer.named_parameters()}}


def _compare(cases: list[str]) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Per (mixer, dtype) and tensor: (error of the CP run against the float64 whole-sequence truth, error of the
    one-process run in the same dtype against that truth — the rounding floor of that dtype)."""
    import torch.distributed as dist

    from megageo.parallel import groups
    from megageo.parallel.context import ContextParallel

    world = int(os.environ["WORLD_SIZE"])
    groups.initialize(context_parallel=world)
    cp = ContextParallel.current()
    length = BLOCK_LENGTHS[world] * world
    block = cp.block(length)

    def on_block(results: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: value[block] if name in PER_POSITION else value for name, value in results.items()}

    errors = {}
    for case in cases:
        generator = torch.Generator().manual_seed(3)
        x = torch.randn(length, 2, tiny_model_config(CASES[case]).hidden_size, generator=generator, dtype=torch.float64)
        cotangent = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        truth = on_block(_results(_mixer(case, ContextParallel(), torch.float64), x, cotangent))
        for dtype in TOLERANCE:
            whole = on_block(_results(_mixer(case, ContextParallel(), dtype), x.to(dtype), cotangent.to(dtype)))
            split = _results(_mixer(case, cp, dtype), x[block].to(dtype), cotangent[block].to(dtype))
            for name, value in split.items():
                if name not in PER_POSITION:
                    dist.all_reduce(value, group=cp.group)
            errors[case, str(dtype)] = {
                name: (relative_error(split[name], truth[name]), relative_error(whole[name], truth[name]))
                for name in truth
            }
    groups.shutdown()
    return errors


@pytest.fixture(scope="module", params=sorted(BLOCK_LENGTHS), ids=lambda cp: f"cp{cp}")
def cp_errors(request) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    per_rank = run_ranks(_compare, request.param, list(CASES))
    return {
        key: {name: tuple(max(rank[key][name][i] for rank in per_rank) for i in (0, 1)) for name in per_rank[0][key]}
        for key in per_rank[0]
    }


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["fp64", "fp32"])
@pytest.mark.parametrize("mixer", list(CASES))
def test_context_parallel_mixer_matches_whole_sequence(cp_errors, mixer: str, dtype: torch.dtype) -> None:
    """≤ 1e-10 (float64) or ≤ 1e-5 (float32) against the float64 truth. Two float32 runs are not compared with
    each other: the decay parameters' gradients sum many cancelling terms, and the one-process float32 run is
    itself up to ~1.5e-5 from the truth there."""
    errors = cp_errors[mixer, str(dtype)]
    assert len(errors) >= 4, f"{mixer}: expected output, input and parameter gradients, got {sorted(errors)}"
    for name, (split_error, whole_error) in errors.items():
        assert split_error <= TOLERANCE[dtype], (
            f"{mixer} {dtype}: {name} off by {split_error:.2e} (the one-process run: {whole_error:.2e})"
        )
