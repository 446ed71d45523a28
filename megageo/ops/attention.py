"""Causal softmax attention in the `[B, T, H, D]` layout of the recurrent kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None, query_offset: int = 0
) -> torch.Tensor:
    """`softmax(scale q k^T + causal mask) v` for `q` `[B, Tq, H, K]`, `k` `[B, Tk, H, K]`, `v` `[B, Tk, H, V]`;
    scale defaults to `K ** -0.5`.

    Query `i` sits at position `query_offset + i` of the keys' sequence and sees keys `0 … query_offset + i`: a
    context-parallel rank attends from its own block of queries over the keys of every block up to its own.
    PyTorch's scaled_dot_product_attention picks flash/memory-efficient kernels on every device, so there is no
    separate CUDA dispatch.
    """
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    if query_offset == 0 and q.shape[2] == k.shape[2]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale).transpose(1, 2)
    query_positions = torch.arange(query_offset, query_offset + q.shape[2], device=q.device)
    visible = torch.arange(k.shape[2], device=q.device) <= query_positions[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=scale).transpose(1, 2)
