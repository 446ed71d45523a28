"""Rotary position embeddings for the softmax Transformer (the recurrent mixers know order from the recurrence).

A frame model rotates by the frame index (1-D RoPE). A token model rotates by each token's (frame, patch row,
patch column): the head's channel pairs are shared out between the three axes, each with its own frequency
ladder (3-D RoPE, as video transformers and Appa's ViDiT do), so a score depends on how far apart two tokens are
in time, latitude and longitude separately.
"""

from __future__ import annotations

import torch

from megageo.model.sequence import SequenceLayout
from megageo.ops.precision import upcast


def token_positions(sequence: SequenceLayout, offset: int, length: int, device: torch.device | None = None) -> torch.Tensor:
    """Positions of tokens `offset … offset + length − 1`: `[length]` frame indices for a frame model, `[length, 3]`
    (frame, row, col) for a token model."""
    index = torch.arange(offset, offset + length, device=device)
    if not sequence.is_tokenized:
        return index
    patch = index % sequence.tokens_per_frame
    return torch.stack([index // sequence.tokens_per_frame, patch // sequence.patch_cols, patch % sequence.patch_cols], -1)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """x: [b, s, heads, d] with d even; rotates channel pairs (i, i + d/2) by position-dependent angles.

    `positions` `[s]` or `[s, axes]` are global: a context-parallel rank passes the positions of its own block, so
    its scores equal those of the whole sequence. With several axes the d/2 pairs are split between them (the
    first axes take any remainder) and each axis's pairs get frequencies `base^(-j/n)`, j < n, as 1-D RoPE does."""
    dim = x.shape[-1]
    dtype = upcast(x).dtype
    positions = positions.to(dtype).reshape(positions.shape[0], -1)
    pairs, axes = dim // 2, positions.shape[1]
    per_axis = [pairs // axes + (axis < pairs % axes) for axis in range(axes)]
    angles = torch.cat([
        positions[:, axis, None] * base ** (-torch.arange(count, dtype=dtype, device=x.device) / count)
        for axis, count in enumerate(per_axis)
    ], dim=-1)
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    first, second = upcast(x).chunk(2, dim=-1)
    rotated = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return rotated.to(x.dtype)
