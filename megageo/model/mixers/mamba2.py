"""Mamba2 (Dao & Gu, 2024): the SSD recurrence S_t = exp(Δ_t A) S_{t-1} + Δ_t B_t x_tᵀ with a scalar decay per head.
Follows fla's / mamba-ssm's `Mamba2` layer: fused in_proj → [z | x | B | C | Δ], SiLU conv over x, B, C,
gate-then-normalise output norm over groups; sharded like Megatron-core's `MambaMixer` (whole groups per rank)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.mixer_configs import Mamba2Config
from megageo.model.mixers.base import LinearAttentionMixer, heads
from megageo.model.mixers.decay import LogDecay
from megageo.model.norm import GatedRMSNorm
from megageo.model.registry import register_mixer
from megageo.model.state_passing import DiagonalDecay, Recurrence
from megageo.ops.precision import upcast
from megageo.ops import frame_causal_gla, mamba_chunk_scan_combined
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

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor):
        """SSD in fla's terms: x are the values, B the keys; mamba-ssm's state `[P, N]` is fla's `[K, V]` transposed."""
        state_size = self.config.state_size
        B, C = heads(parts["B"], state_size), heads(parts["C"], state_size)

        def kernel(values: torch.Tensor, state: torch.Tensor | None):
            out = mamba_chunk_scan_combined(
                values, parts["dt"], -self.decay.A_log.exp(), B, C, SSD_CHUNK, D=self.D, dt_bias=self.decay.dt_bias,
                dt_softplus=True, initial_states=None if state is None else state.transpose(-1, -2),
                return_final_states=state is not None,
            )
            return (out, None) if state is None else (out[0], out[1].transpose(-1, -2))

        step = F.softplus(upcast(parts["dt"]) + upcast(self.decay.dt_bias))  # as the kernel computes it
        log_decay = (step * -self.decay.A_log.exp()).unsqueeze(-1)
        heads_per_group = self.config.num_heads // self.config.n_groups
        queries = C.repeat_interleave(heads_per_group, dim=2)
        values = heads(parts["x"], self.config.head_dim)
        sequence = self.ctx.sequence
        if sequence.frame_causal and sequence.is_tokenized:
            keys = upcast(B).repeat_interleave(heads_per_group, dim=2) * step.unsqueeze(-1)

            def frame_kernel(v: torch.Tensor, state: torch.Tensor | None):
                out, final = frame_causal_gla(queries, keys, v, log_decay, sequence.tokens_per_frame, 1.0, state,
                                              state is not None)
                return out + (upcast(v) * self.D.view(-1, 1)).to(out.dtype), final

            return Recurrence(values, state_size, frame_kernel)
        return Recurrence(values, state_size, kernel, DiagonalDecay(log_decay, queries, scale=1.0))
