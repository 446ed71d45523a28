"""The seed paper's unified forecaster (§3.2, Fig. 1): frames → input projection → L blocks → head on the last step.

It is written as three stages (`InputProjection`, `Block`s, `ForecastHead`) so a pipeline engine can place them
on different ranks; `Forecaster` chains them for the non-pipelined case. With `model.tokens: patch` the end
stages are `megageo.model.tokens`' patch embedding and patch head and the blocks run over T × P spatiotemporal
tokens (STORM's backbone); `end_stages` picks them for both.
"""

from __future__ import annotations

import dataclasses

import torch
from megatron.core.tensor_parallel import mappings

from megageo.config import ModelConfig
from megageo.errors import MegageoError
from megageo.model.block import Block
from megageo.model.frame_projection import project_frames
from megageo.model.head import OutputHead
from megageo.model.tokens import PatchEmbedding, PatchGrid, PatchHead
from megageo.model.parallel_layers import TensorParallelContext, reduce_partial_grad, row_linear
from megageo.parallel.context import ContextParallel
from megageo.parallel.partition import constant, declare


class InputProjection(torch.nn.Module):
    """[B, T, C, H, W] → [T, B, hidden] (eq. 8). Row-parallel over the C·H·W features, so each TP rank holds a
    slice of the largest matrix; under sequence parallel the output leaves already split along time. The weight
    is a Megatron row-parallel layer's; the product is `project_frames` (no input gradient, bf16 frames welcome)
    followed by the same reductions the layer would do."""

    def __init__(self, frame_size: int, config: ModelConfig, ctx: TensorParallelContext):
        super().__init__()
        self.ctx = ctx
        self.proj = row_linear(frame_size, config.hidden_size, ctx, std=config.init_std)
        self.bias = torch.nn.Parameter(torch.empty(config.hidden_size, dtype=ctx.params_dtype))
        declare(self.bias, constant(0.0))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.flatten(2).transpose(0, 1).contiguous()
        if self.ctx.tp > 1:
            x = mappings.scatter_to_tensor_model_parallel_region(x)
        bias = reduce_partial_grad(self.bias, self.ctx) if self.ctx.sequence_parallel else self.bias
        y = project_frames(x, self.proj.weight)
        if self.ctx.sequence_parallel:
            y = mappings.reduce_scatter_to_sequence_parallel_region(y)
        elif self.ctx.tp > 1:
            y = mappings.reduce_from_tensor_model_parallel_region(y)
        return y + bias


class ForecastHead(OutputHead):
    """Final norm, then the last position's hidden state → T_out frames (eq. 10). Under context parallelism every
    rank runs it on its block's last position, so all ranks share one graph; only the last rank's is the forecast.
    For `model.head: residual` its output is the change from the last input frame, and its projection starts at
    zero so that an untrained model forecasts persistence."""

    def __init__(self, frame_shape: tuple[int, int, int], t_out: int, config: ModelConfig, ctx: TensorParallelContext):
        super().__init__(t_out * frame_shape[0] * frame_shape[1] * frame_shape[2], config, ctx)
        self.frame_shape, self.t_out = frame_shape, t_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.normalized(x)[-1])[0]
        return out.view(out.shape[0], self.t_out, *self.frame_shape)


StageSpec = tuple[type[torch.nn.Module], tuple]
"""A stage's class and constructor arguments: built here, or handed to DeepSpeed as a `LayerSpec` so that each
pipeline rank builds only its own stages."""


def end_stages(config: ModelConfig, frame_shape: tuple[int, int, int], t_out: int, ctx: TensorParallelContext,
               ) -> tuple[StageSpec, StageSpec, TensorParallelContext]:
    """The input stage, the head and the context the blocks run in: one position per frame (the seed paper's
    model) or per patch (`model.tokens: patch`, whose sequence layout the mixers read from the context)."""
    check_shapes(config, frame_shape, ctx)
    if config.tokens == "frame":
        frame_size = frame_shape[0] * frame_shape[1] * frame_shape[2]
        return (InputProjection, (frame_size, config, ctx)), (ForecastHead, (frame_shape, t_out, config, ctx)), ctx
    grid = PatchGrid.of(frame_shape, config.patch_size, config.pole_padding)
    ctx = dataclasses.replace(ctx, sequence=grid.sequence(config.frame_causal))
    return (PatchEmbedding, (grid, config, ctx)), (PatchHead, (grid, t_out, config, ctx)), ctx


class Forecaster(torch.nn.Module):
    def __init__(self, config: ModelConfig, frame_shape: tuple[int, int, int], t_out: int, ctx: TensorParallelContext):
        super().__init__()
        (input_stage, input_args), (head, head_args), ctx = end_stages(config, frame_shape, t_out, ctx)
        self.input = input_stage(*input_args)
        self.blocks = torch.nn.ModuleList(Block(config, ctx) for _ in range(config.num_layers))
        self.head = head(*head_args)
        self.residual = config.head == "residual"

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: [B, T_in, C, H, W] normalised → [B, T_out, C, H, W] normalised."""
        x = self.input(frames)
        for block in self.blocks:
            x = block(x)
        out = self.head(x)
        return add_last_frame(out, frames) if self.residual else out


def add_last_frame(change: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """A residual head's forecast: its change [B, T_out, C, H, W] added to the last input frame of every lead."""
    return change + frames[:, -1:].to(change.dtype)


def unsharded_context(config: ModelConfig) -> TensorParallelContext:
    """The context of a TP=1 model built without a process group: full shapes and partition declarations."""
    return TensorParallelContext(tp=1, rank=0, sequence_parallel=False, init_std=config.init_std,
                                 num_layers=config.num_layers)


def unsharded_forecaster(config: ModelConfig, frame_shape: tuple[int, int, int], t_out: int) -> Forecaster:
    """The TP=1 forecaster with uninitialised weights: full shapes and partition declarations, no process group."""
    return Forecaster(config, frame_shape, t_out, unsharded_context(config))


def check_shapes(config: ModelConfig, frame_shape: tuple[int, int, int], ctx: TensorParallelContext) -> None:
    """What the frame shape must allow: the frame model splits a frame's values across TP ranks, the token model
    splits a token's outputs (T_out · C · p · p) across them."""
    if config.tokens == "patch":
        grid = PatchGrid.of(frame_shape, config.patch_size)
        if grid.token_values % ctx.tp:
            raise MegageoError(f"a patch of {grid.token_values} values (C·p·p) cannot be split across {ctx.tp} "
                               "tensor-parallel ranks")
        return
    frame_size = frame_shape[0] * frame_shape[1] * frame_shape[2]
    if frame_size % ctx.tp:
        raise MegageoError(
            f"a frame of {frame_size} values (C·H·W = {frame_shape}) cannot be split across {ctx.tp} tensor-parallel ranks"
        )


def forecast_loss(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """MSE on normalised fields (eq. 11), accumulated in fp32; with `weights` (broadcast against
    [B, leads, C, H, W], mean 1: `megageo.train.objective.loss_weights`) the weighted mean."""
    if weights is None:
        return torch.nn.functional.mse_loss(prediction.float(), target.float())
    return ((prediction.float() - target.float()).square() * weights).mean()


def context_parallel_loss(prediction: torch.Tensor, target: torch.Tensor, cp: ContextParallel,
                          weights: torch.Tensor | None = None) -> torch.Tensor:
    """The objective each CP rank backpropagates. Only the last block holds the last frame, so only the last rank
    has the forecast and its targets. Every rank's gradient is a partial sum and the data-parallel×CP all-reduce
    averages over cp ranks too, so the last rank's loss is scaled by cp (Megatron's convention); the others
    backpropagate zero, which still runs every collective of the backward pass. Averaged over the DP×CP group
    the values give the true loss."""
    if cp.size == 1:
        return forecast_loss(prediction, target, weights)
    if cp.is_last:
        return forecast_loss(prediction, target, weights) * cp.size
    return (prediction * 0).sum(dtype=torch.float32)
