"""Chunk layout and decayed intra-chunk scores shared by every chunkwise-parallel kernel in megageo.ops.

A chunked kernel splits the sequence into chunks of `CHUNK_SIZE` steps, computes everything that stays inside a
chunk with matrix products for all chunks at once, and carries a `[K, V]` state across chunks with a short loop.
All arithmetic is float32 (float64 for float64 inputs; see `megageo.ops.precision`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.ops.precision import upcast

CHUNK_SIZE = 64
"""Steps per chunk: the intra-chunk products are `[64, 64]` and the cross-chunk loop runs T / 64 times."""

SPLIT = 4
"""Per-channel decays split a chunk into 4 blocks, recursively: 64 -> 16 -> 4 steps; see `decayed_scores`."""


def split_chunks(x: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> torch.Tensor:
    """`[B, T, H, D]` -> `[B, H, N, chunk_size, D]` in the compute dtype, zero-padding T up to a multiple of `chunk_size`.

    Zero padding is neutral for every recurrence here: a zero key writes nothing, a zero log-gate decays nothing,
    so the state after the padded steps equals the state after step T.
    """
    padding = -x.shape[1] % chunk_size
    x = F.pad(upcast(x), (0, 0, 0, 0, 0, padding))
    return x.transpose(1, 2).unflatten(2, (-1, chunk_size))


def merge_chunks(x: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of `split_chunks`: `[B, H, N, C, D]` -> `[B, length, H, D]`, dropping the padding."""
    return x.flatten(2, 3)[:, :, :length].transpose(1, 2)


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """fla's `l2norm`: `x / sqrt(sum(x^2) + eps)` over the last dimension, in the compute dtype."""
    x = upcast(x)
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + eps)


def decayed_scores(q: torch.Tensor, k: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Causal scores inside each chunk: `A[i, j] = sum_d q[i, d] k[j, d] exp(g[i, d] - g[j, d])` for j <= i, else 0.

    `q`, `k` are `[..., C, K]`; `g` is the cumulative log decay within the chunk, `[..., C, 1]` when one decay is
    shared by all channels or `[..., C, K]` per channel. Only non-positive numbers are exponentiated, so arbitrarily
    strong decays underflow to 0 instead of overflowing.
    """
    chunk_size = q.shape[-2]
    causal = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()
    if g.shape[-1] == 1:
        decay = (g - g.transpose(-1, -2)).masked_fill(~causal, float("-inf")).exp()
        return (q @ k.transpose(-1, -2)) * decay
    return _per_channel_decayed_scores(q, k, g, causal)


def _per_channel_decayed_scores(
    q: torch.Tensor, k: torch.Tensor, g: torch.Tensor, causal: torch.Tensor
) -> torch.Tensor:
    """`decayed_scores` for per-channel decays, without a `[C, C, K]` decay tensor per chunk.

    The steps are cut into `SPLIT` blocks. Between a block of rows a and an earlier block of columns b the decay
    factors as `exp(g[i] - g[j]) = exp(g[i] - g[start of a]) exp(g[start of a] - g[end of b]) exp(g[end of b] - g[j])`,
    three factors <= 1, the middle one a mere `[K]` vector per block pair, so those scores are one matrix product.
    Blocks on the diagonal are the same problem, smaller, and recurse; at `SPLIT` steps the decays are explicit.
    """
    size = q.shape[-2]
    if size <= SPLIT:
        decay = (g.unsqueeze(-2) - g.unsqueeze(-3)).masked_fill(~causal[..., None], float("-inf")).exp()
        return (q.unsqueeze(-2) * k.unsqueeze(-3) * decay).sum(-1)

    block_size = size // SPLIT
    q, k, g = (x.unflatten(-2, (SPLIT, block_size)) for x in (q, k, g))
    block_start, block_end = g[..., :1, :], g[..., -1:, :]
    q_from_start = q * (g - block_start).exp()
    k_to_end = k * (block_end - g).exp()
    earlier_block = torch.ones(SPLIT, SPLIT, dtype=torch.bool, device=q.device).tril(-1)
    between_blocks = (block_start.unsqueeze(-3) - block_end.unsqueeze(-4)).squeeze(-2)
    between_blocks = between_blocks.masked_fill(~earlier_block[..., None], float("-inf")).exp()
    q_per_column_block = q_from_start.unsqueeze(-4) * between_blocks.transpose(-2, -3).unsqueeze(-2)
    across_blocks = q_per_column_block.flatten(-3, -2) @ k_to_end.transpose(-1, -2)

    within_blocks = _per_channel_decayed_scores(q, k, g, causal[:block_size, :block_size])
    same_block = torch.eye(SPLIT, dtype=q.dtype, device=q.device)[:, None, :, None]
    scores = across_blocks.unflatten(-2, (SPLIT, block_size)).permute(*range(q.dim() - 3), -3, -2, -4, -1)
    scores = scores + within_blocks.unsqueeze(-2) * same_block
    return scores.flatten(-4, -3).flatten(-2, -1)
