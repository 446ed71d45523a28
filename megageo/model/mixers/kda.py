"""Kimi Delta Attention (Kimi Linear, 2025): the gated delta rule with a per-channel decay,
S_t = (I − β_t k_t k_tᵀ) Diag(α_t) S_{t-1} + β_t k_t v_tᵀ. Follows fla's `KimiDeltaAttention` layer: low-rank
forget and output-gate projections, sigmoid-gated output norm."""

from __future__ import annotations

import torch

from megageo.mixer_configs import KDAConfig
from megageo.model.mixers.base import LinearAttentionMixer, fla_recurrence, heads, l2_normalize
from megageo.model.mixers.decay import LogDecay
from megageo.model.parallel_layers import column_linear, replicated_linear
from megageo.model.registry import register_mixer
from megageo.model.state_passing import Recurrence
from megageo.ops import chunk_kda


class LowRankProjection(torch.nn.Module):
    """hidden → rank (replicated on every TP rank) → width (column-parallel, split by heads)."""

    def __init__(self, hidden_size: int, rank: int, width: int, ctx, bias: bool):
        super().__init__()
        self.down = replicated_linear(hidden_size, rank, ctx)
        self.up = column_linear(rank, (width,), ctx, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))[0]


@register_mixer("kda", KDAConfig)
class KimiDeltaAttention(LinearAttentionMixer):
    gate_activation = "sigmoid"

    def __init__(self, config: KDAConfig, hidden_size: int, ctx, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        width = config.num_heads * config.head_dim
        self.forget = LowRankProjection(hidden_size, config.head_dim, width, ctx, bias=False)
        self.out_gate = LowRankProjection(hidden_size, config.head_dim, width, ctx, bias=True)
        self.decay = LogDecay(config.num_heads, width, ctx)

    def projection_segments(self) -> dict[str, int]:
        width = self.config.num_heads * self.config.head_dim
        return {"q": width, "k": width, "v": width, "beta": self.config.num_heads}

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor):
        head_dim = self.config.head_dim
        q, k = (l2_normalize(heads(parts[name], head_dim)) for name in ("q", "k"))
        g = self.decay(heads(self.forget(x), head_dim))
        return Recurrence(heads(parts["v"], head_dim), head_dim, fla_recurrence(chunk_kda, q, k, g, parts["beta"].sigmoid()))

    def output_gate(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.out_gate(x)
