"""Mamba2's state-space duality scan (Dao & Gu, 2024), with the arguments of mamba-ssm's
`mamba_chunk_scan_combined`.

Per head, SSD is gated linear attention with a scalar decay: `C` plays the query, `B` the key, `dt * x` the value
and `dt * A` the log decay, so the CPU path runs the same chunked kernel as GLA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from megageo.ops._dispatch import triton_on_cuda
from megageo.ops._gated_linear import chunk_gated_linear_attention
from megageo.ops.precision import upcast


@triton_on_cuda("mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined")
def mamba_chunk_scan_combined(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = (0.0, math.inf),
    return_final_states: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """mamba-ssm's `mamba_chunk_scan_combined`: the Mamba2 selective scan, chunk by chunk.

    Args:
        x: inputs `[B, T, H, P]`; dt: step sizes `[B, T, H]`; A: negative decay rates `[H]`.
        B, C: input and output projections `[B, T, G, N]`, each group shared by H / G heads.
        chunk_size: steps per chunk (Mamba2 uses 256).
        D: skip connection `[H]` or `[H, P]`; z: output gate `[B, T, H, P]`, applied as `y * silu(z)`.
        dt_bias: `[H]`, added to dt before `dt_softplus`; dt_limit: clamp range for dt, off by default.
        initial_states: `[B, H, P, N]`, the state before step 0.
        seq_idx: packed-sequence ids `[B, T]`; only mamba-ssm's CUDA kernel supports them.
        return_final_states: also return the float32 state `[B, H, P, N]` after step T-1.

    Returns:
        `y` `[B, T, H, P]` in `x.dtype`, with `h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T` and `y_t = h_t C_t + D x_t`;
        `(y, final_states)` when `return_final_states`.
    """
    if seq_idx is not None:
        raise NotImplementedError("seq_idx (packed sequences) needs mamba-ssm's CUDA kernel")

    dt = upcast(dt)
    if dt_bias is not None:
        dt = dt + upcast(dt_bias)
    if dt_softplus:
        dt = F.softplus(dt)
    if dt_limit != (0.0, math.inf):
        dt = dt.clamp(*dt_limit)

    heads_per_group = x.shape[2] // B.shape[2]
    keys, queries = (projection.repeat_interleave(heads_per_group, dim=2) for projection in (B, C))
    y, final_state = chunk_gated_linear_attention(
        queries, keys, upcast(x) * dt.unsqueeze(-1), (dt * upcast(A)).unsqueeze(-1), scale=1.0,
        initial_state=None if initial_states is None else initial_states.transpose(-1, -2),
        output_final_state=return_final_states, chunk_size=chunk_size,
    )
    if D is not None:
        y = y + upcast(x) * (upcast(D).unsqueeze(-1) if D.dim() == 1 else upcast(D))
    if z is not None:
        y = y * F.silu(upcast(z))
    y = y.to(x.dtype)
    return (y, final_state.transpose(-1, -2)) if return_final_states else y
