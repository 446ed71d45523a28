"""Global (non-causal) linear attention: one φ(K)ᵀV state over the whole sequence, read by every position.

The mixer STORM's one-stage data assimilation needs: a denoiser of a whole window sees its past and future at
once, in linear time. Projections as the other linear mixers (fused q | k | v | gate, gated RMSNorm per head);
the feature map and the state are in `megageo.ops.global_linear`. The state is divided by the sequence's length
(a mean over keys, so its size does not grow with the window), and under context parallelism the local states
are summed by one all-reduce. `grid_conv_size` adds the local half: a depthwise convolution of v over each
frame's patch grid, and over `grid_conv_frames` frames (`megageo.model.grid_conv`).
"""

from __future__ import annotations

import torch

from megageo.mixer_configs import GlobalLinearConfig
from megageo.model.grid_conv import PatchGridConvolution
from megageo.model.mixers.base import TensorParallelMixer, heads
from megageo.model.norm import GatedRMSNorm
from megageo.model.registry import register_mixer
from megageo.ops import global_linear_attention
from megageo.parallel.context import all_reduce_sum


@register_mixer("global_linear", GlobalLinearConfig)
class GlobalLinearAttention(TensorParallelMixer):
    def __init__(self, config: GlobalLinearConfig, hidden_size: int, ctx, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        self.norm = GatedRMSNorm(config.head_dim, ctx, eps)
        if config.grid_conv_size:
            self.grid_conv = PatchGridConvolution(self.segments["v"], config.grid_conv_size, ctx,
                                                  config.grid_conv_frames)

    def projection_segments(self) -> dict[str, int]:
        width = self.config.num_heads * self.config.head_dim
        return {"q": width, "k": width, "v": width, "gate": width}

    def output_width(self) -> int:
        return self.segments["v"]

    def mix(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        cp = self.ctx.cp
        q, k, v = (heads(parts[name], self.config.head_dim) for name in ("q", "k", "v"))
        scale = 1.0 / (x.shape[1] * cp.size)
        o = global_linear_attention(q, k, v, scale, reduce_state=lambda state: all_reduce_sum(state, cp)).flatten(-2)
        if self.config.grid_conv_size:
            o = o + self.grid_conv(parts["v"])
        return self.norm(o, parts["gate"])
