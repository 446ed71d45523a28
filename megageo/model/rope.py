"""Rotary position embeddings for the softmax Transformer (the linear mixers need no positions)."""

from __future__ import annotations

import torch

from megageo.ops.precision import upcast


def apply_rope(x: torch.Tensor, base: float = 10000.0, offset: int = 0) -> torch.Tensor:
    """x: [b, s, heads, d] with d even; rotates channel pairs (i, i + d/2) by position-dependent angles.

    Positions are `offset + 0 … s-1`: a context-parallel rank holding frames from `offset` on rotates by the
    global positions, so its scores equal those of the whole sequence."""
    seq_len, dim = x.shape[1], x.shape[-1]
    dtype = upcast(x).dtype
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=dtype, device=x.device) / dim)
    angles = torch.arange(offset, offset + seq_len, dtype=dtype, device=x.device)[:, None] * inv_freq
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    first, second = upcast(x).chunk(2, dim=-1)
    rotated = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return rotated.to(x.dtype)
