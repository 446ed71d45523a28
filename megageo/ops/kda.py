"""Kimi Delta Attention (Kimi Team, 2025): the gated delta rule with a decay per channel, as GLA has one over
linear attention."""

from __future__ import annotations

import torch

from megageo.ops._delta import chunk_gated_delta_rule_any_gate
from megageo.ops._dispatch import triton_on_cuda


@triton_on_cuda("fla.ops.kda", "chunk_kda")
def chunk_kda(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
    scale: float | None = None, initial_state: torch.Tensor | None = None, output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The delta rule after a decay per channel: `S_t = diag(exp(g_t)) S_{t-1}`, then
    `S_t += beta_t k_t (v_t - S_t^T k_t)^T`, `o_t = scale S_t^T q_t`, with log decays `g` `[B, T, H, K]`."""
    return chunk_gated_delta_rule_any_gate(
        q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel
    )
