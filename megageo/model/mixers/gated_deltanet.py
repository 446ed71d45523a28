"""Gated DeltaNet (Yang et al., 2025): S_t = α_t (I − β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ with a scalar per-head
decay α_t = exp(g_t). Follows fla's `GatedDeltaNet` layer (and Megatron-core's `GatedDeltaNet` for sharding)."""

from __future__ import annotations

import torch

from megageo.mixer_configs import GatedDeltaNetConfig
from megageo.model.mixers.base import LinearAttentionMixer, fla_recurrence, heads, l2_normalize
from megageo.model.mixers.decay import LogDecay
from megageo.model.registry import register_mixer
from megageo.model.state_passing import Recurrence
from megageo.ops import chunk_gated_delta_rule


@register_mixer("gated_deltanet", GatedDeltaNetConfig)
class GatedDeltaNet(LinearAttentionMixer):
    def __init__(self, config: GatedDeltaNetConfig, hidden_size: int, ctx, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        self.decay = LogDecay(config.num_heads, config.num_heads, ctx)

    def projection_segments(self) -> dict[str, int]:
        heads_, key_width = self.config.num_heads, self.config.num_heads * self.config.head_dim
        value_width = int(key_width * self.config.expand_v)
        return {"q": key_width, "k": key_width, "v": value_width, "gate": value_width, "a": heads_, "beta": heads_}

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor):
        q, k = (l2_normalize(heads(parts[name], self.config.head_dim)) for name in ("q", "k"))
        kernel = fla_recurrence(chunk_gated_delta_rule, q, k, self.decay(parts["a"]), parts["beta"].sigmoid())
        return Recurrence(heads(parts["v"], self.head_v_dim), self.config.head_dim, kernel)
