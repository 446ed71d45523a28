"""What the output heads share: the final norm, a column-parallel projection of the last positions to the
output's values, and a zero start for that projection (a residual head's, so that an untrained model forecasts
persistence; a denoiser's over a Gaussian base, so that it starts as that Gaussian)."""

from __future__ import annotations

import torch
from megatron.core.tensor_parallel import mappings

from megageo.config import ModelConfig
from megageo.model.norm import RMSNorm
from megageo.model.parallel_layers import TensorParallelContext, column_linear
from megageo.parallel.partition import constant, declare


class OutputHead(torch.nn.Module):
    def __init__(self, outputs: int, config: ModelConfig, ctx: TensorParallelContext, zero: bool = False):
        super().__init__()
        self.ctx = ctx
        self.norm = RMSNorm(config.hidden_size, ctx, config.norm_eps)
        self.proj = column_linear(config.hidden_size, (outputs,), ctx, bias=True, gather_output=True)
        if zero or config.head == "residual":
            declare(self.proj.weight, constant(0.0), self.proj.weight.megageo_partition)

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        """x: [s_local, b, hidden] → the normalised whole sequence [s, b, hidden] (gathered under SP)."""
        x = self.norm(x)
        if self.ctx.sequence_parallel:
            x = mappings.gather_from_sequence_parallel_region(x, tensor_parallel_output_grad=False)
        return x
