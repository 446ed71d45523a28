"""One context-parallel wrapper for every linear recurrence (GLA, DeltaNet, Gated DeltaNet, KDA, Mamba2's SSD).

Each of them, per head, maps an initial state S₀ `[K, V]` and values v to outputs and a final state, and is
jointly linear in (S₀, v): S_T = M S₀ + S_T⁰ and o_t = o_t⁰ + P_t S₀, where M `[K, K]` is the block's transition
(Π (I − β k kᵀ) Diag(α) for the delta family, diagonal for GLA, a scalar for SSD), S_T⁰ and o⁰ are the kernel's
results from a zero state, and P_t `[K]`-rows are what the outputs read from S₀. Because the value columns never
mix, one kernel call gives all of them: run it on values [v | 0_K] from the initial state [0_V | I_K], and the
first V columns are (o⁰, S_T⁰) while the last K are (P, M). This is LASP-2's state passing (and fla's
`fla/ops/cp`), done with the existing kernels on any device:

1. each rank runs its kernel once, widened by K value columns, from that initial state;
2. one fp32 all-gather of [S_T⁰ | M] over the CP group;
3. rank r folds S ← M_j S + S_j over the ranks j < r, giving its true initial state;
4. its outputs are o⁰ + P S.

The cost is K extra value columns in the kernel and cp·B·H·K·(V+K) numbers exchanged per layer; the backward
runs through the same ops (the all-gather's backward is an all-reduce), so gradients need nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from megageo.ops.precision import compute_dtype
from megageo.parallel.context import ContextParallel, all_gather_blocks

RecurrenceKernel = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]
"""`(values [B, T, H, V], initial state [B, H, K, V] or None) → (outputs [B, T, H, V], final state or None)`; the
final state is returned exactly when an initial state is given."""


class BlockSummary(NamedTuple):
    """One block's recurrence, split by linearity: outputs and final state from a zero state, plus how both
    depend on the initial state S₀ (outputs + `state_readout` S₀, final state + `transition` S₀)."""

    outputs: torch.Tensor
    state_readout: torch.Tensor
    final_state: torch.Tensor
    transition: torch.Tensor


def summarize_block(kernel: RecurrenceKernel, values: torch.Tensor, key_dim: int) -> BlockSummary:
    """One kernel call on values [v | 0_K] from the initial state [0_V | I_K]."""
    batch, _, heads, value_dim = values.shape
    state_dtype = compute_dtype(values.dtype)
    identity = torch.eye(key_dim, dtype=state_dtype, device=values.device).expand(batch, heads, key_dim, key_dim)
    initial = torch.cat([identity.new_zeros(batch, heads, key_dim, value_dim), identity], dim=-1)
    widened = torch.cat([values, values.new_zeros(*values.shape[:3], key_dim)], dim=-1)
    outputs, final = kernel(widened, initial)
    return BlockSummary(*outputs.split([value_dim, key_dim], dim=-1), *final.to(state_dtype).split([value_dim, key_dim], dim=-1))


def run_context_parallel(kernel: RecurrenceKernel, values: torch.Tensor, key_dim: int, cp: ContextParallel) -> torch.Tensor:
    """Outputs of this rank's block as if the kernel had run over the whole sequence from a zero state."""
    if cp.size == 1:
        return kernel(values, None)[0]
    block = summarize_block(kernel, values, key_dim)
    state_dtype = block.final_state.dtype
    gathered = all_gather_blocks(torch.cat([block.final_state, block.transition], dim=-1), cp)
    value_dim = values.shape[-1]
    state = gathered[cp.rank, ..., :value_dim] * 0  # keeps every rank in the gather's backward, rank 0 included
    for final_from_zero, transition in (b.split([value_dim, key_dim], dim=-1) for b in gathered[: cp.rank]):
        state = transition @ state + final_from_zero
    correction = torch.einsum("bthk,bhkv->bthv", block.state_readout.to(state_dtype), state)
    return (block.outputs.to(state_dtype) + correction).to(values.dtype)
