"""Causal softmax attention in the `[B, T, H, D]` layout of the recurrent kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """`softmax(scale q k^T + causal mask) v` for `q` `[B, Tq, H, K]`, `k` `[B, Tk, H, K]`, `v` `[B, Tk, H, V]`;
    scale defaults to `K ** -0.5`.

    The queries are the last `Tq` positions of the keys' sequence (Tq ≤ Tk): query `i` sees keys `0 … Tk − Tq + i`.
    A context-parallel rank attends from its own block over the keys of every block up to its own, so this is the
    causal mask aligned to the lower right. On CUDA PyTorch's `causal_lower_right` bias runs it as a flash kernel
    without building the Tq × Tk mask; on CPU that bias would materialize the mask and keep more for backward
    than an explicit boolean mask does (measured: 43.6 against 31.0 MiB at 2,048 frames, CP=2), so the CPU
    path passes the explicit mask, which `megageo plan` counts.
    """
    if q.shape[1] > k.shape[1]:
        raise ValueError(f"causal attention needs at least as many keys ({k.shape[1]}) as queries ({q.shape[1]})")
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    if q.shape[2] == k.shape[2]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale).transpose(1, 2)
    if q.is_cuda:
        mask = causal_lower_right(q.shape[2], k.shape[2])
    else:
        query_positions = torch.arange(k.shape[2] - q.shape[2], k.shape[2])
        mask = torch.arange(k.shape[2]) <= query_positions[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).transpose(1, 2)


def frame_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frame_size: int,
                           scale: float | None = None) -> torch.Tensor:
    """Softmax attention over spatiotemporal tokens where a query sees every key of its own frame and of the frames
    before (`frame_size` tokens a frame, time-major). As in `causal_attention`, the queries are the last `Tq` of the
    keys' positions, which a context-parallel rank's frame-aligned block always is. The mask is explicit on every
    device: no fused kernel takes a block-causal mask."""
    if q.shape[1] > k.shape[1] or k.shape[1] % frame_size or q.shape[1] % frame_size:
        raise ValueError(f"frame-causal attention needs whole frames of {frame_size} tokens and at least as many keys "
                         f"({k.shape[1]}) as queries ({q.shape[1]})")
    offset = k.shape[1] - q.shape[1]
    key_frames = torch.arange(k.shape[1], device=q.device) // frame_size
    query_frames = torch.arange(offset, k.shape[1], device=q.device) // frame_size
    mask = key_frames <= query_frames[:, None]
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).transpose(1, 2)
