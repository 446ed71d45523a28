"""SwiGLU MLP, Megatron-style: fused column-parallel [gate | up], row-parallel down."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.model.parallel_layers import TensorParallelContext, column_linear, gather_sequence, row_linear


def swiglu_width(hidden_size: int, requested: int = 0) -> int:
    """fla's GatedMLP rule (hidden_ratio 4, 2/3 for the gate, rounded up to 256) unless a width is given."""
    if requested:
        return requested
    width = int(hidden_size * 4 * 2 / 3)
    return 256 * ((width + 255) // 256)


class SwiGLU(torch.nn.Module):
    def __init__(self, hidden_size: int, ffn_width: int, ctx: TensorParallelContext):
        super().__init__()
        self.ctx = ctx
        self.up = column_linear(hidden_size, {"gate": ffn_width, "up": ffn_width}, ctx)
        self.down = row_linear(ffn_width, hidden_size, ctx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.up(gather_sequence(x, self.ctx))[0].chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)[0]
