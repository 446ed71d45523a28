"""The shared skeleton of all six mixers, and of the five linear ones.

`TensorParallelMixer`: gather the sequence (SP) → column-parallel fused input projection → per-head work on this
rank's heads → row-parallel output projection. `LinearAttentionMixer` fills the middle with
short causal conv → recurrence kernel → gated RMSNorm. A concrete mixer declares only what is truly its own:
the segments of its input projection, which of them are convolved, how it turns projections into the
kernel's gates, and the kernel call. Context parallelism enters here once for all five linear mixers: the conv
takes its halo from the previous block and the recurrence runs through `run_context_parallel`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from megageo.config import MixerConfig
from megageo.model.conv import ShortConvolution
from megageo.model.norm import GatedRMSNorm
from megageo.model.parallel_layers import TensorParallelContext, column_linear, gather_sequence, row_linear
from megageo.model.state_passing import Recurrence, RecurrenceKernel, run_context_parallel
from megageo.ops import l2_normalize as kernel_l2_normalize


class TensorParallelMixer(torch.nn.Module):
    """x: [s_local, b, hidden] → [s_local, b, hidden], with s_local = s / tp under sequence parallel."""

    conv_segments: tuple[str, ...] = ()

    def __init__(self, config: MixerConfig, hidden_size: int, ctx: TensorParallelContext, eps: float):
        super().__init__()
        self.config, self.hidden_size, self.ctx, self.eps = config, hidden_size, ctx, eps
        self.segments = self.projection_segments()
        self.in_proj = column_linear(hidden_size, self.segments, ctx)
        self.out_proj = row_linear(self.output_width(), hidden_size, ctx)

    def projection_segments(self) -> dict[str, int]:
        """Full widths of the fused input projection's pieces, in order; every piece is split by heads."""
        raise NotImplementedError

    def output_width(self) -> int:
        raise NotImplementedError

    def mix(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """parts: local pieces [b, s, width/tp]; x: the gathered input [b, s, hidden] → [b, s, output_width/tp]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = gather_sequence(x, self.ctx)
        projected = self.in_proj(x)[0].transpose(0, 1)
        local_widths = [self.ctx.local(width) for width in self.segments.values()]
        parts = dict(zip(self.segments, projected.split(local_widths, dim=-1)))
        out = self.mix(parts, x.transpose(0, 1))
        return self.out_proj(out.transpose(0, 1).contiguous())[0]


class LinearAttentionMixer(TensorParallelMixer):
    """in_proj → short conv → kernel → gated RMSNorm → out_proj."""

    conv_segments = ("q", "k", "v")
    gate_activation = "silu"
    silu_without_conv = True
    """fla's delta-rule layers apply SiLU to q/k/v even when the short conv (which ends in SiLU) is off; GLA does not."""

    def __init__(self, config: MixerConfig, hidden_size: int, ctx: TensorParallelContext, eps: float):
        super().__init__(config, hidden_size, ctx, eps)
        if config.use_short_conv:
            widths = tuple(self.segments[name] for name in self.conv_segments)
            self.conv = ShortConvolution(widths, config.conv_size, ctx)
        self.norm = self.output_norm()

    @property
    def head_v_dim(self) -> int:
        return self.output_width() // self.config.num_heads

    def output_width(self) -> int:
        return self.segments["v"]

    def output_norm(self) -> GatedRMSNorm:
        return GatedRMSNorm(self.head_v_dim, self.ctx, self.eps, activation=self.gate_activation)

    def recurrence(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> Recurrence:
        """The recurrence on this rank's heads: its values [b, s, heads_local, head_v_dim], its key width, and the
        kernel as a function of (values, initial state), which is what context parallelism needs."""
        raise NotImplementedError

    def output_gate(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor | None:
        return parts.get("gate")

    def mix(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if self.config.use_short_conv:
            local_widths = [self.ctx.local(self.segments[name]) for name in self.conv_segments]
            convolved = self.conv(torch.cat([parts[name] for name in self.conv_segments], dim=-1))
            parts.update(zip(self.conv_segments, convolved.split(local_widths, dim=-1)))
        elif self.silu_without_conv:
            parts.update((name, F.silu(parts[name])) for name in self.conv_segments)
        o = run_context_parallel(self.recurrence(parts, x), self.ctx.cp).flatten(-2)
        return self.norm(o, self.output_gate(parts, x))


def heads(t: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[b, s, heads·head_dim] → [b, s, heads, head_dim]."""
    return t.unflatten(-1, (-1, head_dim))


def fla_recurrence(op: Callable, q: torch.Tensor, k: torch.Tensor, *gates: torch.Tensor) -> RecurrenceKernel:
    """An fla chunk op (`op(q, k, v, *gates, initial_state=..., output_final_state=...)`) as a function of
    (values, initial state)."""
    return lambda v, state: op(q, k, v, *gates, initial_state=state, output_final_state=state is not None)


def l2_normalize(t: torch.Tensor) -> torch.Tensor:
    """fla's l2norm in the compute dtype, returned in `t`'s dtype (the kernels take q and k in the model's dtype)."""
    return kernel_l2_normalize(t).to(t.dtype)
