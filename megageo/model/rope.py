"""Rotary position embeddings for the softmax Transformer (the linear mixers need no positions)."""

from __future__ import annotations

import torch


def apply_rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """x: [b, s, heads, d] with d even; rotates channel pairs (i, i + d/2) by position-dependent angles."""
    seq_len, dim = x.shape[1], x.shape[-1]
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float32, device=x.device) / dim)
    angles = torch.arange(seq_len, dtype=torch.float32, device=x.device)[:, None] * inv_freq
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    first, second = x.float().chunk(2, dim=-1)
    rotated = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return rotated.to(x.dtype)
