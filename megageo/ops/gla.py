"""Gated linear attention (Yang et al., 2024): a linear-attention state with a data-dependent per-channel decay."""

from __future__ import annotations

import torch

from megageo.ops._dispatch import triton_on_cuda
from megageo.ops._gated_linear import chunk_gated_linear_attention


@triton_on_cuda("fla.ops.gla", "chunk_gla")
def chunk_gla(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
    scale: float | None = None, initial_state: torch.Tensor | None = None, output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T`, `o_t = scale S_t^T q_t`, with `g` log forget gates per channel
    `[B, T, H, K]` (e.g. `F.logsigmoid(...)`). See `megageo.ops` for the shared conventions."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return chunk_gated_linear_attention(q, k, v, g, scale, initial_state, output_final_state)
