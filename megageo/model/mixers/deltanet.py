"""DeltaNet (Schlag et al., 2021; Yang et al., 2024): S_t = S_{t-1} + β_t k_t (v_t − S_{t-1}ᵀ k_t)ᵀ.
Follows fla's `DeltaNet` layer: SiLU short convs on q/k/v, l2-normalised q/k, sigmoid β."""

from __future__ import annotations

import torch

from megageo.mixer_configs import DeltaNetConfig
from megageo.model.mixers.base import LinearAttentionMixer, fla_recurrence, heads, l2_normalize
from megageo.model.registry import register_mixer
from megageo.model.state_passing import Recurrence
from megageo.ops import chunk_delta_rule


@register_mixer("deltanet", DeltaNetConfig)
class DeltaNet(LinearAttentionMixer):
    def projection_segments(self) -> dict[str, int]:
        width = self.config.num_heads * self.config.head_dim
        segments = {"q": width, "k": width, "v": width, "beta": self.config.num_heads}
        if self.config.use_output_gate:
            segments["gate"] = width
        return segments

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor):
        q, k = (l2_normalize(heads(parts[name], self.config.head_dim)) for name in ("q", "k"))
        kernel = fla_recurrence(chunk_delta_rule, q, k, parts["beta"].sigmoid())
        return Recurrence(heads(parts["v"], self.config.head_dim), self.config.head_dim, kernel)
