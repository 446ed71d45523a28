"""Gated DeltaNet's rule (Yang et al., 2025): the delta rule with a data-dependent scalar decay per head and step."""

from __future__ import annotations

import torch

from megageo.ops._delta import chunk_gated_delta_rule_any_gate
from megageo.ops._dispatch import triton_on_cuda


@triton_on_cuda("fla.ops.gated_delta_rule", "chunk_gated_delta_rule")
def chunk_gated_delta_rule(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor,
    scale: float | None = None, initial_state: torch.Tensor | None = None, output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The delta rule after a decay shared by all channels: `S_t = exp(g_t) S_{t-1}`, then
    `S_t += beta_t k_t (v_t - S_t^T k_t)^T`, `o_t = scale S_t^T q_t`, with log decays `g` `[B, T, H]`."""
    shared_decay = g.unsqueeze(-1)
    return chunk_gated_delta_rule_any_gate(
        q, k, v, shared_decay, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel
    )
