"""Mamba2 (Dao & Gu, 2024): the SSD recurrence S_t = exp(Δ_t A) S_{t-1} + Δ_t B_t x_tᵀ with a scalar decay per head.
Follows fla's / mamba-ssm's `Mamba2` layer: fused in_proj → [z | x | B | C | Δ], SiLU conv over x, B, C,
gate-then-normalise output norm over groups; sharded like Megatron-core's `MambaMixer` (whole groups per rank)."""

from __future__ import annotations

import torch

from megageo.mixer_configs import Mamba2Config
from megageo.model.mixers.base import LinearAttentionMixer, heads
from megageo.model.mixers.decay import LogDecay
from megageo.model.norm import GatedRMSNorm
from megageo.model.registry import register_mixer
from megageo.ops import mamba_chunk_scan_combined
from megageo.parallel.partition import Partition, constant, declare

SSD_CHUNK = 64


@register_mixer("mamba2", Mamba2Config)
class Mamba2(LinearAttentionMixer):
    conv_segments = ("x", "B", "C")

    def __init__(self, config: Mamba2Config, hidden_size: int, ctx, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        self.decay = LogDecay(config.num_heads, config.num_heads, ctx)
        self.D = torch.nn.Parameter(torch.empty(ctx.local(config.num_heads), dtype=torch.float32))
        declare(self.D, constant(1.0), Partition(0, (config.num_heads,)))

    def projection_segments(self) -> dict[str, int]:
        inner = self.config.num_heads * self.config.head_dim
        group_state = self.config.n_groups * self.config.state_size
        return {"gate": inner, "x": inner, "B": group_state, "C": group_state, "dt": self.config.num_heads}

    def output_width(self) -> int:
        return self.segments["x"]

    def output_norm(self) -> GatedRMSNorm:
        inner = self.output_width()
        return GatedRMSNorm(
            inner // self.config.n_groups, self.ctx, self.eps, gate_first=True, per_channel_width=inner
        )

    def kernel(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        state = self.config.state_size
        return mamba_chunk_scan_combined(
            heads(parts["x"], self.config.head_dim), parts["dt"], -self.decay.A_log.exp(),
            heads(parts["B"], state), heads(parts["C"], state), SSD_CHUNK, D=self.D,
            dt_bias=self.decay.dt_bias, dt_softplus=True,
        )
