"""The forecaster as a DeepSpeed `PipelineModule`: input stage, one `LayerSpec` per block, then the head.

Stages are balanced by blocks (`type:Block`): the input projection joins the first stage and the head the last.
Each stage initialises its layers under the names they have in `Forecaster` (`input.`, `blocks.{i}.`,
`head.`), so a pipelined model starts from exactly the single-process weights.
"""

from __future__ import annotations

from functools import partial

import torch
from deepspeed.pipe import LayerSpec, PipelineModule
from deepspeed.runtime.pipe.topology import PipeModelDataParallelTopology

from megageo.config import ModelConfig
from megageo.model.block import Block
from megageo.model.forecaster import add_last_frame, context_parallel_loss, end_stages
from megageo.model.init import initialize_parameters
from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel.context import ContextParallel


def layer_names(num_layers: int) -> list[str]:
    """Forecaster parameter prefix of each pipeline layer, by layer index."""
    return ["input.", *(f"blocks.{i}." for i in range(num_layers)), "head."]


def build_pipeline(
    config: ModelConfig, frame_shape: tuple[int, int, int], t_out: int, ctx: TensorParallelContext,
    pipeline_parallel: int, gradient_replicas: int, loss_weights: torch.Tensor | None = None,
) -> PipelineModule:
    """`gradient_replicas` = DP × CP: DeepSpeed's grid calls that axis "data" (rank = tp + TP·(cp + CP·(dp + DP·pp))
    in Megatron's tp-cp-ep-dp-pp order is its model + MP·(data + DATA·pipe))."""
    first, last, block_ctx = end_stages(config, frame_shape, t_out, ctx)
    specs = [
        LayerSpec(first[0], *first[1]),
        *(LayerSpec(Block, config, block_ctx) for _ in range(config.num_layers)),
        LayerSpec(last[0], *last[1]),
    ]
    topology = PipeModelDataParallelTopology(num_pp=pipeline_parallel, num_mp=ctx.tp, num_dp=gradient_replicas)
    return PipelineModule(
        specs, topology=topology, loss_fn=partial(pipeline_loss, cp=ctx.cp, weights=loss_weights), partition_method="type:Block",
    )


def pipeline_loss(prediction: torch.Tensor, labels: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                  cp: ContextParallel, weights: torch.Tensor | None) -> torch.Tensor:
    """The last stage's objective. A residual head's labels are (targets, last input frame): the head stage holds
    only hidden states, so the forecast is completed here."""
    if isinstance(labels, tuple):
        target, last_frame = labels
        return context_parallel_loss(add_last_frame(prediction, last_frame), target, cp, weights)
    return context_parallel_loss(prediction, labels, cp, weights)


def initialize_pipeline(module: PipelineModule, num_layers: int, seed: int, ctx: TensorParallelContext) -> None:
    names = layer_names(num_layers)
    for index, layer in module.named_children():
        if index.isdigit():
            initialize_parameters(layer, seed, ctx.tp, ctx.rank, prefix=names[int(index)])
