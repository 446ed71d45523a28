"""Causal softmax attention in the `[B, T, H, D]` layout of the recurrent kernels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """`softmax(scale q k^T + causal mask) v` for `q`, `k` `[B, T, H, K]`, `v` `[B, T, H, V]`; scale defaults to
    `K ** -0.5`.

    PyTorch's scaled_dot_product_attention picks flash/memory-efficient kernels on every device, so there is no
    separate CUDA dispatch.
    """
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale).transpose(1, 2)
