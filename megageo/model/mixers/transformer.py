"""Softmax attention with rotary positions: the quadratic baseline the linear mixers are measured against."""

from __future__ import annotations

import torch

from megageo.mixer_configs import TransformerConfig
from megageo.model.mixers.base import TensorParallelMixer, heads
from megageo.model.registry import register_mixer
from megageo.model.rope import apply_rope
from megageo.ops import causal_attention


@register_mixer("transformer", TransformerConfig)
class Attention(TensorParallelMixer):
    def projection_segments(self) -> dict[str, int]:
        width = self.config.num_heads * self.config.head_dim
        return {"q": width, "k": width, "v": width}

    def output_width(self) -> int:
        return self.segments["v"]

    def mix(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        q, k, v = (heads(parts[name], self.config.head_dim) for name in ("q", "k", "v"))
        q, k = (apply_rope(t, self.config.rope_base) for t in (q, k))
        return causal_attention(q, k, v).flatten(-2)
