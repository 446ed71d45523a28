"""Megatron-core tensor-parallel linears and sequence-parallel regions, set up the way every megageo module uses them.

The pattern, shared by mixers and MLPs: gather the sequence once (when sequence parallel is on), apply a
`ColumnParallelLinear` whose outputs are split by heads, do per-head work locally, and return through a
`RowParallelLinear` that all-reduces (or reduce-scatters back to sequence shards). Column layers are built
with Megatron's own sequence-parallel switch off because megageo gathers explicitly: that lets replicated
low-rank gate projections (GLA, KDA) read the same gathered input as the column projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from megatron.core.model_parallel_config import ModelParallelConfig
from megatron.core.tensor_parallel import mappings
from megatron.core.tensor_parallel.layers import ColumnParallelLinear, RowParallelLinear

from megageo.model.sequence import SequenceLayout
from megageo.parallel import groups
from megageo.parallel.context import ContextParallel
from megageo.parallel.partition import Partition, constant, declare, normal


@dataclass(frozen=True)
class TensorParallelContext:
    """What a module needs to know about the layout: TP degree and rank, whether activations are seq-split,
    which context-parallel block of the sequence this rank holds, and what a position of that sequence is."""

    tp: int
    rank: int
    sequence_parallel: bool
    init_std: float
    num_layers: int
    params_dtype: torch.dtype = torch.float32
    cp: ContextParallel = ContextParallel()
    sequence: SequenceLayout = SequenceLayout()

    @classmethod
    def current(cls, sequence_parallel: bool, init_std: float, num_layers: int) -> TensorParallelContext:
        return cls(groups.tp_size(), groups.tp_rank(), sequence_parallel, init_std, num_layers,
                   cp=ContextParallel.current())

    def megatron_config(self, sequence_parallel: bool) -> ModelParallelConfig:
        return ModelParallelConfig(
            tensor_model_parallel_size=self.tp,
            sequence_parallel=sequence_parallel and self.tp > 1,
            params_dtype=self.params_dtype,
            use_cpu_initialization=not torch.cuda.is_available(),
            perform_initialization=False,
        )

    @property
    def output_init_std(self) -> float:
        """Megatron's scaled init for layers that write into the residual stream."""
        return self.init_std / math.sqrt(2.0 * self.num_layers)

    def local(self, width: int) -> int:
        return width // self.tp


def column_linear(
    input_size: int, segments: dict[str, int] | tuple[int, ...], ctx: TensorParallelContext, bias: bool = False,
    gather_output: bool = False,
) -> ColumnParallelLinear:
    """A column-parallel projection onto fused, head-split segments (its input must already be sequence-whole)."""
    widths = tuple(segments.values()) if isinstance(segments, dict) else tuple(segments)
    partition = Partition(0, widths)
    partition.check(ctx.tp)
    layer = ColumnParallelLinear(
        input_size, sum(widths), config=ctx.megatron_config(sequence_parallel=False), init_method=lambda w: None,
        bias=bias, gather_output=gather_output,
    )
    declare(layer.weight, normal(ctx.init_std), partition)
    if bias:
        declare(layer.bias, constant(0.0), partition)
    return layer


def row_linear(
    input_size: int, output_size: int, ctx: TensorParallelContext, std: float | None = None, bias: bool = False,
) -> RowParallelLinear:
    """A row-parallel projection back to the residual stream (reduce-scatters to sequence shards under SP)."""
    partition = Partition(1, (input_size,))
    partition.check(ctx.tp)
    layer = RowParallelLinear(
        input_size, output_size, config=ctx.megatron_config(ctx.sequence_parallel), init_method=lambda w: None,
        bias=bias, input_is_parallel=True, skip_bias_add=True,
    )
    declare(layer.weight, normal(ctx.output_init_std if std is None else std), partition)
    if bias:
        declare(layer.bias, constant(0.0))
    return layer


def replicated_linear(input_size: int, output_size: int, ctx: TensorParallelContext, bias: bool = False) -> torch.nn.Linear:
    """A small projection every TP rank holds whole (the down-projection of a low-rank gate)."""
    layer = torch.nn.Linear(input_size, output_size, bias=bias, dtype=ctx.params_dtype)
    declare(layer.weight, normal(ctx.init_std))
    if bias:
        declare(layer.bias, constant(0.0))
    return layer


def gather_sequence(x: torch.Tensor, ctx: TensorParallelContext) -> torch.Tensor:
    """[s/tp, b, h] → [s, b, h] under sequence parallel. The column layer after it all-reduces the input
    gradient, so the backward only needs to keep this rank's slice (`tensor_parallel_output_grad=False`)."""
    if not ctx.sequence_parallel:
        return x
    return mappings.gather_from_sequence_parallel_region(x, tensor_parallel_output_grad=False)


def reduce_partial_grad(param: torch.Tensor, ctx: TensorParallelContext) -> torch.Tensor:
    """Use a replicated parameter whose gradient each TP rank only partly computes (it sees only its heads or
    its sequence shard): identity forward, all-reduce of the gradient backward."""
    if ctx.tp == 1:
        return param
    return mappings.copy_to_tensor_model_parallel_region(param)

