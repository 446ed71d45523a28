"""Depthwise convolution over the token grid: the local half of a token mixer.

One global linear-attention state is a low-rank summary of the whole window: a token reads the same state whether
its neighbour or the far side of the globe wrote it, so a denoiser built on it alone draws patch-sized blocks, and
its frames come out nearly independent of each other (measured: an rms 6-hour change ten times the data's).
Han et al.'s focused linear attention (2023) adds a depthwise convolution of v to the attention's output to give
that rank back; here it runs on each frame's patch grid (k × k, periodic in longitude, zero past the poles) and,
with `frames` > 1, over that many frames centred on the token's own (zero past the window's ends). A
context-parallel block then takes `frames // 2` frames of halo from each neighbouring block. Channels are
head-split, so a tensor-parallel rank holds the weights of its own heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.context import neighbour_block
from megageo.parallel.partition import Partition, declare, uniform


def pad_sphere(grids: torch.Tensor, pad: int) -> torch.Tensor:
    """[..., rows, cols] of a latitude–longitude grid → `pad` more on every side: periodic across the date line,
    zeros past the poles (what a centred convolution on the globe needs)."""
    if pad:
        grids = torch.cat([grids[..., -pad:], grids, grids[..., :pad]], dim=-1)
    return F.pad(grids, (0, 0, pad, pad))


class PatchGridConvolution(torch.nn.Module):
    def __init__(self, width: int, kernel_size: int, ctx: TensorParallelContext, frames: int = 1):
        super().__init__()
        self.kernel_size, self.frames, self.ctx = kernel_size, frames, ctx
        # [channels, frame offset, row, col]: with one frame, the shape of a depthwise Conv2d's weight
        self.weight = torch.nn.Parameter(torch.empty(ctx.local(width), frames, kernel_size, kernel_size,
                                                     dtype=ctx.params_dtype))
        bound = 1.0 / math.sqrt(frames * kernel_size**2)  # PyTorch's default Conv3d init, one input channel per group
        declare(self.weight, uniform(-bound, bound), Partition(0, (width,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [b, s, channels], s whole frames of `ctx.sequence`'s rows × cols tokens → the same shape."""
        layout = self.ctx.sequence
        batch, seq_len, channels = x.shape
        grids = x.reshape(batch, -1, layout.patch_rows, layout.patch_cols, channels).permute(0, 4, 1, 2, 3)
        pad, halo = self.kernel_size // 2, self.frames // 2
        grids = pad_sphere(grids, pad)
        if halo and self.ctx.cp.size == 1:
            grids = F.pad(grids, (0, 0, 0, 0, halo, halo))
        elif halo:  # the config holds every block to at least `halo` frames
            grids = torch.cat([neighbour_block(grids[:, :, -halo:], self.ctx.cp, -1), grids,
                               neighbour_block(grids[:, :, :halo], self.ctx.cp, +1)], dim=2)
        out = F.conv3d(grids, self.weight.unsqueeze(1), groups=channels)
        return out.permute(0, 2, 3, 4, 1).reshape(batch, seq_len, channels)
