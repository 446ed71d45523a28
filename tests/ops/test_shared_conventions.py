"""Properties every recurrent op shares: a sequence may be processed in pieces by passing the state along (what
context parallelism and incremental inference rely on), and low-precision inputs keep float32 states."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from ops_testing import random_inputs, relative_error
from test_ssd import ssd_inputs

from megageo.ops import (
    causal_attention,
    chunk_delta_rule,
    chunk_gated_delta_rule,
    chunk_gla,
    chunk_kda,
    mamba_chunk_scan_combined,
)


def ssd(initial_state: torch.Tensor | None = None, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mamba-ssm's argument names mapped onto fla's, so every op runs through the same test."""
    return mamba_chunk_scan_combined(
        **inputs, chunk_size=64, dt_softplus=True, initial_states=initial_state, return_final_states=True
    )


def fla_style(op: Callable) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return lambda **inputs: op(**inputs, output_final_state=True)


OPS = {
    "gla": (fla_style(chunk_gla), lambda length: random_inputs("gla", 2, length, 2, 32, initial_state=False)),
    "delta_rule": (
        fla_style(chunk_delta_rule),
        lambda length: random_inputs("delta_rule", 2, length, 2, 32, initial_state=False),
    ),
    "gated_delta_rule": (
        fla_style(chunk_gated_delta_rule),
        lambda length: random_inputs("gated_delta_rule", 2, length, 2, 32, initial_state=False),
    ),
    "kda": (fla_style(chunk_kda), lambda length: random_inputs("kda", 2, length, 2, 32, initial_state=False)),
    "ssd": (ssd, lambda length: ssd_inputs(length, initial_states=False)),
}


def time_slice(inputs: dict[str, torch.Tensor], steps: slice) -> dict[str, torch.Tensor]:
    """Per-step tensors are `[B, T, ...]` with at least 3 dims; per-head parameters (A, D, dt_bias) are 1-d."""
    return {name: x[:, steps] if x.dim() >= 3 else x for name, x in inputs.items()}


@pytest.mark.parametrize("op_name", OPS)
def test_processing_in_pieces_equals_processing_at_once(op_name: str) -> None:
    op, make_inputs = OPS[op_name]
    inputs = make_inputs(130)
    o, state = op(**inputs)
    o_first, state_first = op(**time_slice(inputs, slice(0, 70)))
    o_second, state_second = op(**time_slice(inputs, slice(70, 130)), initial_state=state_first)
    assert relative_error(torch.cat([o_first, o_second], dim=1), o) <= 1e-5
    assert relative_error(state_second, state) <= 1e-5


@pytest.mark.parametrize("op_name", OPS)
def test_bfloat16_inputs_give_bfloat16_outputs_and_float32_state(op_name: str) -> None:
    op, make_inputs = OPS[op_name]
    inputs = make_inputs(100)
    o, state = op(**{name: x.bfloat16() if x.dim() >= 3 else x for name, x in inputs.items()})
    o_float32, state_float32 = op(**inputs)
    assert o.dtype == torch.bfloat16 and state.dtype == torch.float32
    assert relative_error(o.float(), o_float32) <= 2e-2


def test_causal_attention_is_masked_softmax_attention() -> None:
    q, k, v = torch.randn(3, 2, 37, 4, 16).unbind(0)
    scores = torch.einsum("bthd,bshd->bhts", q, k) * 0.3
    scores = scores.masked_fill(torch.ones(37, 37, dtype=torch.bool).triu(1), float("-inf"))
    expected = torch.einsum("bhts,bshd->bthd", F.softmax(scores, dim=-1), v)
    assert relative_error(causal_attention(q, k, v, scale=0.3), expected) <= 1e-6


def test_causal_attention_queries_are_the_last_positions_of_the_keys() -> None:
    """A context-parallel rank's 12 queries at positions 25…36 of 37 keys: the last 12 rows of full attention."""
    q, k, v = torch.randn(3, 2, 37, 4, 16).unbind(0)
    full = causal_attention(q, k, v, scale=0.3)
    assert relative_error(causal_attention(q[:, 25:], k, v, scale=0.3), full[:, 25:]) <= 1e-6
    with pytest.raises(ValueError, match="at least as many keys"):
        causal_attention(q, k[:, :10], v[:, :10])
