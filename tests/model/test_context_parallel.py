"""Context parallelism computes what one process computes on the whole sequence, for all six mixers.

Each rank builds a mixer layer (fused projection, short conv, kernel, gated norm, output projection; RoPE and
softmax for the Transformer) holding only its contiguous block; one process builds it with the same weights over
the whole sequence (CP=1), once for all ranks. The block's outputs must equal the whole run's slice, and the
gradients of the input and of every parameter (summed over CP ranks, as the data-parallel×CP all-reduce sums
them) must equal the whole run's. The truth is the whole-sequence run in float64. Sequence lengths give blocks
longer and shorter than the 64-step chunk, and not multiples of it. Token mixers run over frames of 5 tokens
(blocks of whole frames, as the token model's CP blocks are): frame-causal GLA, Mamba2 and attention, and the
non-causal global linear mixer, with and without its grid convolution.
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
TOKEN_CASES = {"gla frame-causal": ("gla", {}), "mamba2 frame-causal": ("mamba2", {}),
               "transformer frame-causal": ("transformer", {}), "global_linear": ("global_linear", {}),
               "global_linear grid-conv": ("global_linear", {"grid_conv_size": 3, "grid_conv_frames": 3})}
"""Token-model cases: name → mixer and its settings, over frames of `TOKENS_PER_FRAME` tokens."""
TOKENS_PER_FRAME = 5
CASES = {**{mixer: (mixer, {}) for mixer in MIXER_SETTINGS}, **TOKEN_CASES}
PER_POSITION = ("output", "input grad")


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).norm() / expected.double().norm().clamp_min(1e-300))


def _mixer(case: str, cp, dtype: torch.dtype):
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.model.registry import build_mixer
    from megageo.model.sequence import SequenceLayout

    mixer, settings = CASES[case]
    config = tiny_model_config(mixer, **settings)
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


def _on_block(results: dict[str, torch.Tensor], name: str, block: slice) -> torch.Tensor:
    return results[name][block] if name in PER_POSITION else results[name]


def _inputs(case: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole sequence [length, 2, hidden] and the output's cotangent, float64, the same in every process."""
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(length, 2, tiny_model_config(CASES[case][0]).hidden_size, generator=generator, dtype=torch.float64)
    return x, torch.randn(x.shape, generator=generator, dtype=torch.float64)


def _blocks(cases: list[str]) -> tuple[slice, dict[tuple[str, str], dict[str, torch.Tensor]]]:
    """This CP rank's block and, per (mixer, dtype), its results on that block; parameter gradients summed over CP
    ranks, as the data-parallel×CP all-reduce sums them."""
    import torch.distributed as dist

    from megageo.parallel import groups
    from megageo.parallel.context import ContextParallel

    world = int(os.environ["WORLD_SIZE"])
    groups.initialize(context_parallel=world)
    cp = ContextParallel.current()
    block = cp.block(BLOCK_LENGTHS[world] * world)
    results = {}
    for case in cases:
        x, cotangent = _inputs(case, BLOCK_LENGTHS[world] * world)
        for dtype in TOLERANCE:
            split = _results(_mixer(case, cp, dtype), x[block].to(dtype), cotangent[block].to(dtype))
            for name, value in split.items():
                if name not in PER_POSITION:
                    dist.all_reduce(value, group=cp.group)
            results[case, str(dtype)] = split
    groups.shutdown()
    return block, results


def _whole_sequences(cases: list[str], lengths: list[int]) -> dict[tuple[str, str, int], dict[str, torch.Tensor]]:
    """In one process (CP=1): per (mixer, dtype, length), the results over the whole sequence."""
    from megageo.parallel import groups
    from megageo.parallel.context import ContextParallel

    groups.initialize()
    results = {}
    for case in cases:
        for length in lengths:
            x, cotangent = _inputs(case, length)
            for dtype in TOLERANCE:
                results[case, str(dtype), length] = _results(_mixer(case, ContextParallel(), dtype), x.to(dtype),
                                                              cotangent.to(dtype))
    return results


@pytest.fixture(scope="module")
def whole_sequences() -> dict[tuple[str, str, int], dict[str, torch.Tensor]]:
    (results,) = run_ranks(_whole_sequences, 1, list(CASES), sorted({n * cp for cp, n in BLOCK_LENGTHS.items()}))
    return results


@pytest.fixture(scope="module", params=sorted(BLOCK_LENGTHS), ids=lambda cp: f"cp{cp}")
def cp_errors(request, whole_sequences) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """Per (mixer, dtype) and tensor, the worst over ranks of (the CP run's error against the float64
    whole-sequence truth, the one-process run's in the same dtype: the rounding floor of that dtype). The ranks
    compute only their blocks; the whole sequences are computed once, for all degrees."""
    world = request.param
    length = BLOCK_LENGTHS[world] * world
    per_rank = run_ranks(_blocks, world, list(CASES))
    errors = {}
    for case in CASES:
        truth = whole_sequences[case, str(torch.float64), length]
        for dtype in TOLERANCE:
            whole, key = whole_sequences[case, str(dtype), length], (case, str(dtype))
            errors[key] = {name: (
                max(relative_error(split[key][name], _on_block(truth, name, block)) for block, split in per_rank),
                max(relative_error(_on_block(whole, name, block), _on_block(truth, name, block))
                    for block, _ in per_rank)) for name in truth}
    return errors


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
