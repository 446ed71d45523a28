"""Spatiotemporal tokens (STORM's backbone): every frame cut into patches, a window one sequence of T × P tokens.

`model.tokens: patch` replaces the frame model's two end stages and keeps its blocks:
- `PatchEmbedding` (the `input` stage): frames [B, T, C, H, W] → patches of p × p grid points holding every
  channel → one linear map to the hidden width, plus where and when each token is: a learned vector per patch
  position (latitude and longitude) and a fixed sinusoid of the frame index (time). Those additive positions work
  with every mixer; the Transformer also rotates by (frame, row, col) (`megageo.model.rope`).
- `PatchHead` (the `head` stage): the last frame's P tokens → T_out frames of patches → the grid.

The 73 latitudes of the NCEP grid (poles included) are not a multiple of a patch: the grid is padded up to the next
multiple of p by repeating each pole's row (one point, so the padding adds no new information), split between the
two poles (three rows north and four south for p = 8; `model.pole_padding`), and the head's output is cropped back
to the grid's rows. Padded at the south alone, the last token row held the south pole by itself, at 0.4 % of a mean
row's cell-area weight, and learned little from it (the tiny prior's analyses: 29 m RMSE on that row, 15 m on the
north pole's, 7-12 m on the rows between; split, 19 and 18 m). Longitudes must divide by p (144 divides by 2, 3, 4,
6, 8, 12, ...). Tokens are time-major and raster-ordered within a frame, north to south, west to east.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from megatron.core.tensor_parallel import mappings

from megageo.config import ModelConfig
from megageo.errors import MegageoError
from megageo.model.head import OutputHead
from megageo.model.parallel_layers import TensorParallelContext, replicated_linear
from megageo.model.sequence import SequenceLayout
from megageo.parallel.partition import declare, normal


@dataclass(frozen=True)
class PatchGrid:
    """How a [C, H, W] frame is cut into `rows × cols` patches of `patch × patch` points."""

    channels: int
    height: int
    width: int
    patch: int
    pole_padding: str = "split"

    @classmethod
    def of(cls, frame_shape: tuple[int, int, int], patch: int, pole_padding: str = "split") -> PatchGrid:
        channels, height, width = frame_shape
        if patch < 1 or width % patch:
            raise MegageoError(f"model.patch_size={patch} must divide the grid's {width} longitudes")
        return cls(channels, height, width, patch, pole_padding)

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.patch)

    @property
    def cols(self) -> int:
        return self.width // self.patch

    @property
    def north_padding(self) -> int:
        """Copies of the first (north-pole) row above the grid; `south_padding` copies of the last row go below."""
        return (self.rows * self.patch - self.height) // 2 if self.pole_padding == "split" else 0

    @property
    def south_padding(self) -> int:
        return self.rows * self.patch - self.height - self.north_padding

    @property
    def tokens_per_frame(self) -> int:
        return self.rows * self.cols

    @property
    def token_values(self) -> int:
        """C · p · p: the grid values one token holds."""
        return self.channels * self.patch * self.patch

    def sequence(self, frame_causal: bool) -> SequenceLayout:
        return SequenceLayout(self.rows, self.cols, frame_causal)


def tokens_per_frame(config: ModelConfig, frame_shape: tuple[int, int, int]) -> int:
    """Backbone positions per frame: 1 for the frame model, the patches of a frame for a token model."""
    return 1 if config.tokens == "frame" else PatchGrid.of(frame_shape, config.patch_size).tokens_per_frame


def patchify(frames: torch.Tensor, grid: PatchGrid) -> torch.Tensor:
    """[B, T, C, H, W] → [B, T·P, C·p·p]; rows above and below the grid repeat its pole rows."""
    batch, steps = frames.shape[:2]
    north = frames[..., :1, :].expand(*frames.shape[:3], grid.north_padding, grid.width)
    south = frames[..., -1:, :].expand(*frames.shape[:3], grid.south_padding, grid.width)
    frames = torch.cat([north, frames, south], dim=-2)
    p = grid.patch
    patches = frames.reshape(batch, steps, grid.channels, grid.rows, p, grid.cols, p)
    return patches.permute(0, 1, 3, 5, 2, 4, 6).reshape(batch, steps * grid.tokens_per_frame, grid.token_values)


def unpatchify(tokens: torch.Tensor, grid: PatchGrid) -> torch.Tensor:
    """[B, T·P, C·p·p] → [B, T, C, H, W]: `patchify`'s inverse, the padding rows dropped."""
    batch, p = tokens.shape[0], grid.patch
    patches = tokens.reshape(batch, -1, grid.rows, grid.cols, grid.channels, p, p)
    frames = patches.permute(0, 1, 4, 2, 5, 3, 6).reshape(batch, -1, grid.channels, grid.rows * p, grid.width)
    return frames[..., grid.north_padding : grid.north_padding + grid.height, :]


def time_encoding(frame_index: torch.Tensor, width: int, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoids of the frame index, [T] → [T, width] (Vaswani et al.'s ladder of periods up to 10⁴ frames)."""
    half = width // 2
    frequencies = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
    angles = frame_index.to(torch.float64)[:, None] * frequencies
    encoding = torch.cat([angles.sin(), angles.cos(), angles.new_zeros(len(frame_index), width - 2 * half)], dim=-1)
    return encoding.to(dtype)


class PatchEmbedding(torch.nn.Module):
    """[B, T, C, H, W] → [T·P, B, hidden] (sequence-first; split along the sequence under SP). The embedding is small
    and every TP rank holds it whole; it runs on the whole sequence and is then scattered, so its gradient arrives
    whole on every rank."""

    def __init__(self, grid: PatchGrid, config: ModelConfig, ctx: TensorParallelContext):
        super().__init__()
        self.grid, self.ctx = grid, ctx
        self.proj = replicated_linear(grid.token_values, config.hidden_size, ctx, bias=True)
        self.position = torch.nn.Parameter(torch.empty(grid.tokens_per_frame, config.hidden_size, dtype=ctx.params_dtype))
        declare(self.position, normal(config.init_std))

    def forward(self, frames: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """`condition` [B, hidden], if given, is added to every token of its sample (a denoiser's noise level),
        before the sequence-parallel scatter so that its gradient, too, arrives whole on every rank."""
        steps = frames.shape[1]
        tokens = self.proj(patchify(frames.to(self.proj.weight.dtype), self.grid))
        first_frame = self.ctx.cp.rank * steps  # a context-parallel block starts at this frame of the window
        when = time_encoding(torch.arange(first_frame, first_frame + steps), tokens.shape[-1], tokens.dtype)
        where = self.position
        tokens = tokens.unflatten(1, (steps, -1)) + where + when[:, None].to(tokens.device)
        if condition is not None:
            tokens = tokens + condition[:, None, None].to(tokens.dtype)
        tokens = tokens.flatten(1, 2)
        x = tokens.transpose(0, 1).contiguous()
        return mappings.scatter_to_sequence_parallel_region(x) if self.ctx.sequence_parallel else x


class PatchHead(OutputHead):
    """Final norm, then the last frame's P tokens → T_out frames on the grid. Under context parallelism every rank
    runs it on its block's last frame (one graph for all); only the last rank's is the forecast. A residual head
    starts at zero, so an untrained model forecasts persistence."""

    def __init__(self, grid: PatchGrid, t_out: int, config: ModelConfig, ctx: TensorParallelContext):
        super().__init__(t_out * grid.token_values, config, ctx)
        self.grid, self.t_out = grid, t_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last_frame = self.normalized(x)[-self.grid.tokens_per_frame:].transpose(0, 1)  # [B, P, hidden]
        out = self.proj(last_frame)[0].unflatten(-1, (self.t_out, self.grid.token_values))
        return unpatchify(out.transpose(1, 2).flatten(1, 2), self.grid)
