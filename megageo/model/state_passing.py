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

Where the transition is diagonal (GLA per channel, SSD per head) the mixer says so with a `DiagonalDecay`, and
M = Diag(exp Σ g) and P_t = scale · q_t ⊙ exp(Σ_{s≤t} g_s) come in closed form from the gates: the kernel runs
at its own width and only cp·B·H·K·(V+1) numbers travel.
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


class DiagonalDecay(NamedTuple):
    """S_t = Diag(exp g_t) S_{t-1} + k_t v_tᵀ and o_t = scale · q_tᵀ S_t (+ terms that do not read the state)."""

    log_decay: torch.Tensor
    """[B, T, H, K], or [B, T, H, 1] for one decay shared by a head's channels; ≤ 0."""
    queries: torch.Tensor
    """[B, T, H, K]."""
    scale: float


class Recurrence(NamedTuple):
    """What a linear mixer hands to `run_context_parallel`: its values [B, T, H, V], key width K, the kernel as a
    function of (values, initial state), and its diagonal decay where the transition is diagonal."""

    values: torch.Tensor
    key_dim: int
    kernel: RecurrenceKernel
    diagonal: DiagonalDecay | None = None


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


def summarize_diagonal_block(kernel: RecurrenceKernel, values: torch.Tensor, decay: DiagonalDecay) -> BlockSummary:
    """The block summary of a diagonal recurrence: one kernel call at its own width, M and P from the gates.
    (`transition` holds M's diagonal, [B, H, K, 1].)"""
    batch, _, heads, value_dim = values.shape
    key_dim = decay.queries.shape[-1]
    state_dtype = compute_dtype(values.dtype)
    outputs, final = kernel(values, values.new_zeros(batch, heads, key_dim, value_dim, dtype=state_dtype))
    cumulative = decay.log_decay.to(state_dtype).cumsum(dim=1)
    readout = decay.scale * decay.queries.to(state_dtype) * cumulative.exp()
    transition = cumulative[:, -1].exp().expand(batch, heads, key_dim).unsqueeze(-1)
    return BlockSummary(outputs, readout, final.to(state_dtype), transition)


def run_context_parallel(recurrence: Recurrence, cp: ContextParallel) -> torch.Tensor:
    """Outputs of this rank's block as if the kernel had run over the whole sequence from a zero state."""
    kernel, values, key_dim = recurrence.kernel, recurrence.values, recurrence.key_dim
    if cp.size == 1:
        return kernel(values, None)[0]
    if recurrence.diagonal is None:
        block = summarize_block(kernel, values, key_dim)
    else:
        block = summarize_diagonal_block(kernel, values, recurrence.diagonal)
    transition_width = block.transition.shape[-1]
    state_dtype = block.final_state.dtype
    gathered = all_gather_blocks(torch.cat([block.final_state, block.transition], dim=-1), cp)
    value_dim = values.shape[-1]
    state = gathered[cp.rank, ..., :value_dim] * 0  # keeps every rank in the gather's backward, rank 0 included
    for final_from_zero, transition in (b.split([value_dim, transition_width], dim=-1) for b in gathered[: cp.rank]):
        state = (transition @ state if recurrence.diagonal is None else transition * state) + final_from_zero
    correction = torch.einsum("bthk,bhkv->bthv", block.state_readout.to(state_dtype), state)
    return (block.outputs.to(state_dtype) + correction).to(values.dtype)
