"""Depthwise k × k convolution over every frame's patch grid: the local half of a token mixer.

One global linear-attention state is a low-rank summary of the whole window: a token reads the same state whether
its neighbour or the far side of the globe wrote it, so a denoiser built on it alone draws patch-sized blocks.
Han et al.'s focused linear attention (2023) adds a depthwise convolution of v to the attention's output to give
that rank back; here it runs on the token grid of each frame, periodic in longitude and zero past the poles.
Frames never mix, so a context-parallel block of whole frames needs no halo; channels are head-split, so a
tensor-parallel rank holds the weights of its own heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.partition import Partition, declare, uniform


class PatchGridConvolution(torch.nn.Module):
    def __init__(self, width: int, kernel_size: int, ctx: TensorParallelContext):
        super().__init__()
        self.kernel_size, self.ctx = kernel_size, ctx
        self.weight = torch.nn.Parameter(torch.empty(ctx.local(width), 1, kernel_size, kernel_size,
                                                     dtype=ctx.params_dtype))
        bound = 1.0 / kernel_size  # PyTorch's default Conv2d init for one input channel per group
        declare(self.weight, uniform(-bound, bound), Partition(0, (width,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [b, s, channels], s whole frames of `ctx.sequence`'s rows × cols tokens → the same shape."""
        layout = self.ctx.sequence
        batch, seq_len, channels = x.shape
        grids = x.reshape(-1, layout.patch_rows, layout.patch_cols, channels).permute(0, 3, 1, 2)
        pad = self.kernel_size // 2
        grids = F.pad(F.pad(grids, (pad, pad, 0, 0), mode="circular"), (0, 0, pad, pad))
        out = F.conv2d(grids, self.weight, groups=channels)
        return out.permute(0, 2, 3, 1).reshape(batch, seq_len, channels)
