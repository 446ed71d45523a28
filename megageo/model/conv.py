"""Short causal depthwise convolution over the q/k/v (or x/B/C) channels, as in fla's ShortConvolution."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.partition import Partition, declare, uniform


class ShortConvolution(torch.nn.Module):
    """Depthwise causal conv + SiLU. Channels are head-split, so the weight is split like the segments it reads."""

    def __init__(self, segments: tuple[int, ...], kernel_size: int, ctx: TensorParallelContext):
        super().__init__()
        channels = ctx.local(sum(segments))
        self.kernel_size = kernel_size
        self.weight = torch.nn.Parameter(torch.empty(channels, 1, kernel_size, dtype=ctx.params_dtype))
        bound = 1.0 / math.sqrt(kernel_size)  # PyTorch's default Conv1d init for one input channel per group
        declare(self.weight, uniform(-bound, bound), Partition(0, segments))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [b, s, channels] → [b, s, channels]; position t sees inputs t-k+1 … t only."""
        seq_len = x.shape[1]
        y = F.conv1d(x.transpose(1, 2), self.weight, padding=self.kernel_size - 1, groups=x.shape[-1])
        return F.silu(y[..., :seq_len]).transpose(1, 2)
