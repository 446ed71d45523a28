"""Layout-independent initialisation: every parameter is drawn whole from a generator seeded by its name, then
this rank keeps its shard. A model at TP=2 or split into pipeline stages therefore starts from exactly the
weights of the single-process model with the same seed."""

from __future__ import annotations

import zlib

import torch

from megageo.parallel.partition import partition_of


def initialize_parameters(module: torch.nn.Module, seed: int, tp: int, rank: int, prefix: str = "") -> None:
    with torch.no_grad():
        for name, param in module.named_parameters():
            full_name = f"{prefix}{name}"
            generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(full_name.encode()))
            partition = partition_of(param)
            shape = partition.full_shape(param.shape, tp) if partition is not None else param.shape
            full = torch.empty(shape, dtype=torch.float32)
            param.megageo_init(full, generator)
            local = partition.shard(full, rank, tp) if partition is not None else full
            param.copy_(local.to(param.dtype))
