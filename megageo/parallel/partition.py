"""How each parameter is split across tensor-parallel ranks, declared once where the parameter is made.

A fused projection such as `[q | k | v | gate]` is not split as one block: every rank holds its share of
*each* segment (`[q_r | k_r | v_r | gate_r]`), so the local split into q, k, v stays a plain `torch.split`.
`Partition` records the split dimension and the full segment widths; `shard` and `unshard` move between
the full tensor and the per-rank pieces. Initialisation, the TP tests and the checkpoint tools all use these
declarations instead of guessing from parameter names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from megatron.core.tensor_parallel.layers import set_tensor_model_parallel_attributes

Initializer = Callable[[torch.Tensor, torch.Generator], None]


@dataclass(frozen=True)
class Partition:
    dim: int
    segments: tuple[int, ...]
    """Full (unsplit) widths of the fused pieces along `dim`; each is split evenly across ranks."""

    def check(self, tp: int) -> None:
        for width in self.segments:
            if width % tp:
                raise ValueError(f"segment of width {width} cannot be split across {tp} tensor-parallel ranks")

    def full_shape(self, local_shape: torch.Size, tp: int) -> torch.Size:
        shape = list(local_shape)
        shape[self.dim] = sum(self.segments)
        assert local_shape[self.dim] * tp == shape[self.dim], (local_shape, self, tp)
        return torch.Size(shape)

    def shard(self, full: torch.Tensor, rank: int, tp: int) -> torch.Tensor:
        pieces = full.split(list(self.segments), dim=self.dim)
        return torch.cat([piece.chunk(tp, dim=self.dim)[rank] for piece in pieces], dim=self.dim)

    def unshard(self, shards: Sequence[torch.Tensor]) -> torch.Tensor:
        tp = len(shards)
        local = [width // tp for width in self.segments]
        per_rank = [shard.split(local, dim=self.dim) for shard in shards]
        segments = [torch.cat([pieces[i] for pieces in per_rank], dim=self.dim) for i in range(len(local))]
        return torch.cat(segments, dim=self.dim)


def declare(param: torch.nn.Parameter, init: Initializer, partition: Partition | None = None) -> None:
    """Attach the initializer (applied to the full tensor) and, for split parameters, the partition."""
    param.megageo_init = init
    param.megageo_partition = partition
    if partition is not None and not hasattr(param, "tensor_model_parallel"):
        set_tensor_model_parallel_attributes(param, True, partition.dim, 1)


def partition_of(param: torch.Tensor) -> Partition | None:
    return getattr(param, "megageo_partition", None)


def normal(std: float) -> Initializer:
    return lambda full, generator: full.normal_(0.0, std, generator=generator)


def constant(value: float) -> Initializer:
    return lambda full, generator: full.fill_(value)


def uniform(low: float, high: float) -> Initializer:
    return lambda full, generator: full.uniform_(low, high, generator=generator)
