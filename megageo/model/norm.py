"""RMS norms: the residual-stream norm, and the gated output norm that closes every linear mixer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.ops.precision import upcast
from megageo.model.parallel_layers import TensorParallelContext, reduce_partial_grad
from megageo.parallel.partition import Partition, constant, declare


def rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = upcast(x)
    return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)


class RMSNorm(torch.nn.Module):
    """Pre-norm of the residual stream. Under sequence parallel each rank sees only its sequence shard, so the
    weight's gradient is a partial sum that is all-reduced across TP ranks."""

    def __init__(self, width: int, ctx: TensorParallelContext, eps: float = 1e-6):
        super().__init__()
        self.ctx, self.eps = ctx, eps
        self.weight = torch.nn.Parameter(torch.empty(width, dtype=ctx.params_dtype))
        declare(self.weight, constant(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = reduce_partial_grad(self.weight, self.ctx) if self.ctx.sequence_parallel else self.weight
        return (rms_normalize(x, self.eps) * upcast(weight)).to(x.dtype)


class GatedRMSNorm(torch.nn.Module):
    """`norm(o) * act(gate)` per group of channels, as fla's FusedRMSNormGated and Mamba2's RMSNormGated.

    fla-style mixers normalise each head's value vector with one weight shared by all heads (replicated, so
    its gradient is all-reduced across the TP ranks that hold different heads). Mamba2 gates first, then
    normalises groups of its inner width with a per-channel weight split like the heads (`per_channel=True`).
    """

    def __init__(
        self, group_width: int, ctx: TensorParallelContext, eps: float, activation: str = "silu",
        gate_first: bool = False, per_channel_width: int | None = None,
    ):
        super().__init__()
        self.ctx, self.eps, self.group_width, self.gate_first = ctx, eps, group_width, gate_first
        self.activation = {"silu": F.silu, "sigmoid": torch.sigmoid}[activation]
        self.per_channel = per_channel_width is not None
        width = ctx.local(per_channel_width) if self.per_channel else group_width
        self.weight = torch.nn.Parameter(torch.empty(width, dtype=ctx.params_dtype))
        declare(self.weight, constant(1.0), Partition(0, (per_channel_width,)) if self.per_channel else None)

    def forward(self, o: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
        """o, gate: [..., channels] with channels a multiple of the group width."""
        weight = self.weight if self.per_channel else reduce_partial_grad(self.weight, self.ctx)
        x = upcast(o)
        if gate is not None and self.gate_first:
            x = x * self.activation(upcast(gate))
        x = rms_normalize(x.unflatten(-1, (-1, self.group_width)), self.eps) * upcast(weight).view(-1, self.group_width)
        x = x.flatten(-2)
        if gate is not None and not self.gate_first:
            x = x * self.activation(upcast(gate))
        return x.to(o.dtype)
