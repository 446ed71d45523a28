"""DeltaNet's delta rule (Schlag et al., 2021; Yang et al., 2024): the state corrects its own prediction of v_t."""

from __future__ import annotations

import torch

from megageo.ops._delta import chunk_gated_delta_rule_any_gate
from megageo.ops._dispatch import triton_on_cuda


@triton_on_cuda("fla.ops.delta_rule", "chunk_delta_rule")
def chunk_delta_rule(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
    scale: float | None = None, initial_state: torch.Tensor | None = None, output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T`, `o_t = scale S_t^T q_t`, with write strengths `beta`
    `[B, T, H]` in (0, 1) and l2-normalised keys. See `megageo.ops` for the shared conventions."""
    no_decay = q.new_zeros(*q.shape[:3], 1)
    return chunk_gated_delta_rule_any_gate(
        q, k, v, no_decay, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel
    )
