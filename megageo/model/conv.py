"""Short causal depthwise convolution over the q/k/v (or x/B/C) channels, as in fla's ShortConvolution."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from megageo.errors import MegageoError
from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.context import neighbour_block
from megageo.parallel.partition import Partition, declare, uniform


class ShortConvolution(torch.nn.Module):
    """Depthwise causal conv + SiLU. Channels are head-split, so the weight is split like the segments it reads."""

    def __init__(self, segments: tuple[int, ...], kernel_size: int, ctx: TensorParallelContext):
        super().__init__()
        channels = ctx.local(sum(segments))
        self.kernel_size, self.ctx = kernel_size, ctx
        self.weight = torch.nn.Parameter(torch.empty(channels, 1, kernel_size, dtype=ctx.params_dtype))
        bound = 1.0 / math.sqrt(kernel_size)  # PyTorch's default Conv1d init for one input channel per group
        declare(self.weight, uniform(-bound, bound), Partition(0, segments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [b, s, channels] → [b, s, channels]; position t sees inputs t-k+1 … t only.

        Under context parallelism the first k-1 positions of a block see the previous block's last k-1 inputs
        (its halo); the halo's gradient returns to its owner through the gather's backward."""
        seq_len, halo = x.shape[1], self.kernel_size - 1
        if self.ctx.cp.size == 1:
            y = F.conv1d(x.transpose(1, 2), self.weight, padding=halo, groups=x.shape[-1])[..., :seq_len]
        else:
            if seq_len < halo:
                raise MegageoError(f"a context-parallel block of {seq_len} frames is shorter than the conv halo ({halo})")
            x = torch.cat([neighbour_block(x[:, seq_len - halo :], self.ctx.cp, -1), x], dim=1)
            y = F.conv1d(x.transpose(1, 2), self.weight, groups=x.shape[-1])
        return F.silu(y).transpose(1, 2)
