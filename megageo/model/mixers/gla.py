"""Gated Linear Attention (Yang et al., 2024): S_t = Diag(α_t) S_{t-1} + k_t v_tᵀ, with a low-rank data-dependent
per-channel forget gate. Projections and gates follow fla's `GatedLinearAttention` layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.mixer_configs import GLAConfig
from megageo.model.mixers.base import LinearAttentionMixer, fla_recurrence, heads
from megageo.model.parallel_layers import column_linear, replicated_linear
from megageo.model.registry import register_mixer
from megageo.model.state_passing import DiagonalDecay, Recurrence
from megageo.ops import chunk_gla, frame_causal_gla
from megageo.ops.precision import upcast


@register_mixer("gla", GLAConfig)
class GatedLinearAttention(LinearAttentionMixer):
    silu_without_conv = False

    def __init__(self, config: GLAConfig, hidden_size: int, ctx, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        key_dim = self.segments["k"]
        self.forget_down = replicated_linear(hidden_size, config.gate_low_rank_dim, ctx)
        self.forget_up = column_linear(config.gate_low_rank_dim, (key_dim,), ctx, bias=True)

    def projection_segments(self) -> dict[str, int]:
        key_dim = int(self.hidden_size * self.config.expand_k)
        value_dim = int(self.hidden_size * self.config.expand_v)
        return {"q": key_dim, "k": key_dim, "v": value_dim, "gate": value_dim}

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor):
        head_k_dim = self.segments["k"] // self.config.num_heads
        forget = self.forget_up(self.forget_down(x))[0]
        log_forget = F.logsigmoid(upcast(forget)) / self.config.gate_logit_normalizer
        q, k, g = (heads(t, head_k_dim) for t in (parts["q"], parts["k"], log_forget))
        values, scale = heads(parts["v"], self.head_v_dim), head_k_dim**-0.5
        sequence = self.ctx.sequence
        if sequence.frame_causal and sequence.is_tokenized:
            def kernel(v: torch.Tensor, state: torch.Tensor | None):
                return frame_causal_gla(q, k, v, g, sequence.tokens_per_frame, scale, state, state is not None)

            return Recurrence(values, head_k_dim, kernel)
        return Recurrence(values, head_k_dim, fla_recurrence(chunk_gla, q, k, g), DiagonalDecay(g, q, scale))
