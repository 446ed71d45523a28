"""Chunked gated linear attention, the CPU kernel behind GLA (per-channel decay) and Mamba2's SSD (scalar decay).

Recurrence per head, with `S` a `[K, V]` state: `S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T`, `o_t = scale q_t^T S_t`.
The state never depends on the outputs, so every chunk's contribution is computed at once and the loop across
chunks is one multiply-add per chunk.
"""

from __future__ import annotations

import torch

from megageo.ops._chunk import CHUNK_SIZE, decayed_scores, merge_chunks, split_chunks


def chunk_gated_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Outputs `[B, T, H, V]` in `v.dtype` and, if asked, the float32 final state `[B, H, K, V]`.

    `q`, `k`: `[B, T, H, K]`; `v`: `[B, T, H, V]`; `g`: log decays, `[B, T, H, K]` or `[B, T, H, 1]` (shared).
    """
    output_dtype, length = v.dtype, q.shape[1]
    q, k, v, g = (split_chunks(x, chunk_size) for x in (q, k, v, g))
    g = g.cumsum(-2)
    g_last = g[..., -1:, :]

    intra_chunk = decayed_scores(q, k, g) @ v
    chunk_writes = (k * (g_last - g).exp()).transpose(-1, -2) @ v
    chunk_decays = g_last.exp().transpose(-1, -2)

    state = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1]) if initial_state is None else initial_state.to(q.dtype)
    states_before = []
    for decay, write in zip(chunk_decays.unbind(2), chunk_writes.unbind(2)):
        states_before.append(state)
        state = state * decay + write
    inter_chunk = (q * g.exp()) @ torch.stack(states_before, dim=2)

    o = merge_chunks(scale * (intra_chunk + inter_chunk), length)
    return o.to(output_dtype), state if output_final_state else None
