"""Chunk layout and decayed intra-chunk scores shared by every chunkwise-parallel kernel in megageo.ops.

A chunked kernel splits the sequence into chunks of `CHUNK_SIZE` steps, computes everything that stays inside a
chunk with matrix products for all chunks at once, and carries a `[K, V]` state across chunks with a short loop.
All arithmetic is float32, whatever the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK_SIZE = 64
"""Steps per chunk: the intra-chunk products are `[64, 64]` and the cross-chunk loop runs T / 64 times."""

SUB_CHUNK_SIZE = 8
"""Per-channel decays are rescaled around a reference every 8 steps; see `decayed_scores`."""


def split_chunks(x: torch.Tensor, chunk_size: int = CHUNK_SIZE) -> torch.Tensor:
    """`[B, T, H, D]` -> float32 `[B, H, N, chunk_size, D]`, zero-padding T up to a multiple of `chunk_size`.

    Zero padding is neutral for every recurrence here: a zero key writes nothing, a zero log-gate decays nothing,
    so the state after the padded steps equals the state after step T.
    """
    padding = -x.shape[1] % chunk_size
    x = F.pad(x.float(), (0, 0, 0, 0, 0, padding))
    return x.transpose(1, 2).unflatten(2, (-1, chunk_size))


def merge_chunks(x: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of `split_chunks`: `[B, H, N, C, D]` -> `[B, length, H, D]`, dropping the padding."""
    return x.flatten(2, 3)[:, :, :length].transpose(1, 2)


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """fla's `l2norm`: `x / sqrt(sum(x^2) + eps)` over the last dimension, in float32."""
    x = x.float()
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + eps)


def decayed_scores(q: torch.Tensor, k: torch.Tensor, g: torch.Tensor, *, strict: bool = False) -> torch.Tensor:
    """Causal scores inside each chunk: `A[i, j] = sum_d q[i, d] k[j, d] exp(g[i, d] - g[j, d])` for j <= i.

    `q`, `k` are `[..., C, K]`; `g` is the cumulative log decay within the chunk, `[..., C, 1]` when one decay is
    shared by all channels or `[..., C, K]` per channel. Entries above the diagonal are 0, and so is the diagonal
    when `strict`. Only non-positive numbers are ever exponentiated, so arbitrarily strong decays underflow to 0
    instead of overflowing.
    """
    chunk_size = q.shape[-2]
    causal = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril(-1 if strict else 0)
    if g.shape[-1] == 1:
        decay = (g - g.transpose(-1, -2)).masked_fill(~causal, float("-inf")).exp()
        return (q @ k.transpose(-1, -2)) * decay
    return _per_channel_decayed_scores(q, k, g, causal)


def _per_channel_decayed_scores(
    q: torch.Tensor, k: torch.Tensor, g: torch.Tensor, causal: torch.Tensor
) -> torch.Tensor:
    """`decayed_scores` for per-channel decays, without a `[C, C, K]` tensor per chunk.

    Factoring `exp(g[i] - g[j]) = exp(g[i] - g[r]) exp(g[r] - g[j])` turns the scores into one matrix product, and
    both factors are <= 1 when the reference step r lies between j and i. So, as in fla's kernels, the chunk is
    cut into sub-chunks: a block of rows and an earlier block of columns use the first row of the row block as r,
    and only the sub-chunks on the diagonal, where no such r exists, build their `[c, c, K]` decays explicitly.
    """
    chunk_size = q.shape[-2]
    sub_size = min(SUB_CHUNK_SIZE, chunk_size)
    n_sub = chunk_size // sub_size
    q, k, g = (x.unflatten(-2, (n_sub, sub_size)) for x in (q, k, g))

    reference = g[..., :1, :]
    q_from_reference = q * (g - reference).exp()
    earlier_block = torch.ones(n_sub, n_sub, dtype=torch.bool, device=q.device).tril(-1)
    reference_minus_g = reference.unsqueeze(-3) - g.unsqueeze(-4)
    reference_minus_g = reference_minus_g.masked_fill(~earlier_block[:, :, None, None], float("-inf"))
    k_to_reference = (k.unsqueeze(-4) * reference_minus_g.exp()).flatten(-3, -2)
    off_diagonal = (q_from_reference @ k_to_reference.transpose(-1, -2)).unflatten(-1, (n_sub, sub_size))

    causal_in_block = causal[:sub_size, :sub_size, None]
    decay = (g.unsqueeze(-2) - g.unsqueeze(-3)).masked_fill(~causal_in_block, float("-inf")).exp()
    diagonal = (q.unsqueeze(-2) * k.unsqueeze(-3) * decay).sum(-1)
    same_block = torch.eye(n_sub, dtype=q.dtype, device=q.device)[:, None, :, None]
    scores = off_diagonal + diagonal.unsqueeze(-2) * same_block
    return scores.flatten(-4, -3).flatten(-2, -1)
