"""Mamba-style per-head decay parameters shared by Gated DeltaNet and KDA: g = −exp(A_log) · softplus(a + dt_bias)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from megageo.ops.precision import upcast

from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.partition import Partition, declare


def _log_uniform_a(low: float, high: float):
    return lambda full, generator: full.copy_(torch.empty_like(full).uniform_(low, high, generator=generator).log())


def _inverse_softplus_dt(dt_min: float = 0.001, dt_max: float = 0.1, floor: float = 1e-4):
    """dt log-uniform in [dt_min, dt_max], stored as softplus⁻¹(dt) so that softplus(dt_bias) starts at dt."""

    def init(full: torch.Tensor, generator: torch.Generator) -> None:
        u = torch.rand(full.shape, generator=generator, dtype=full.dtype)
        dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
        full.copy_(dt + torch.log(-torch.expm1(-dt)))

    return init


class LogDecay(torch.nn.Module):
    """Per-head `A_log` and a `dt_bias` of `dt_width` (= heads for GDN, heads·head_k_dim for KDA), split by heads."""

    def __init__(self, num_heads: int, dt_width: int, ctx: TensorParallelContext, a_range: tuple[float, float] = (1, 16)):
        super().__init__()
        self.A_log = torch.nn.Parameter(torch.empty(ctx.local(num_heads), dtype=torch.float32))
        self.dt_bias = torch.nn.Parameter(torch.empty(ctx.local(dt_width), dtype=torch.float32))
        declare(self.A_log, _log_uniform_a(*a_range), Partition(0, (num_heads,)))
        declare(self.dt_bias, _inverse_softplus_dt(), Partition(0, (dt_width,)))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """a: [b, s, heads_local, dt_width/heads] (or [b, s, heads_local]) → log decay in the compute dtype, ≤ 0."""
        bias = self.dt_bias.view(a.shape[2:]) if a.dim() == 4 else self.dt_bias
        decay_rate = self.A_log.exp().view(-1, *([1] * (a.dim() - 3)))
        return -decay_rate * F.softplus(upcast(a) + bias)
