"""A whole checkpoint in memory at no layout at all: full fp32 weights (and Adam moments) by `Forecaster` name.

Pipeline stages are stitched by name (each rank's names are mapped to `Forecaster` names), then every tensor
is unsharded across TP ranks by the partition its module declared. Replicated tensors are taken from TP rank 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from megageo.convert.layout import ModelLayout
from megageo.convert.shards import MOMENTS, load, read_rank
from megageo.convert.source import SourceCheckpoint
from megageo.errors import MegageoError

ENGINE_COUNTERS = ("global_steps", "global_samples", "skipped_steps")


@dataclass
class FullState:
    weights: dict[str, torch.Tensor]
    moments: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    adam_step: int = 0
    engine: dict[str, Any] = field(default_factory=dict)
    """DeepSpeed's own counters and the LR scheduler's state, which every rank shares."""


def consolidate(source: SourceCheckpoint, layout: ModelLayout, with_optimizer: bool = False) -> FullState:
    tp = source.layout.tp
    ranks = [[read_rank(source, layout, stage, rank, with_optimizer) for rank in range(tp)]
             for stage in range(source.layout.pp)]
    weights = _unshard(layout, [[rank.weights for rank in stage] for stage in ranks], source)
    if not with_optimizer:
        return FullState(weights)
    moments = {key: _unshard(layout, [[rank.moments[key] for rank in stage] for stage in ranks], source)
               for key in MOMENTS}
    states = load(source.model_states(0))
    engine = {"lr_scheduler": states["lr_scheduler"], **{key: states[key] for key in ENGINE_COUNTERS}}
    return FullState(weights, moments, ranks[0][0].adam_step, engine)


def _unshard(
    layout: ModelLayout, stages: list[list[dict[str, torch.Tensor]]], source: SourceCheckpoint,
) -> dict[str, torch.Tensor]:
    """stages[s][tp_rank]: name → local tensor; each name lives on exactly one stage."""
    by_name: dict[str, list[torch.Tensor]] = {}
    for stage in stages:
        for rank in stage:
            for name, tensor in rank.items():
                by_name.setdefault(name, []).append(tensor)
    full = {}
    for name, spec in layout.params.items():
        shards = by_name.get(name)
        if shards is None or len(shards) != source.layout.tp:
            raise MegageoError(f"{source.tag_dir}: parameter {name} is missing from the checkpoint's shards")
        tensor = spec.unshard(shards)
        if tensor.shape != spec.shape:
            raise MegageoError(
                f"{source.tag_dir}: parameter {name} unshards to {tuple(tensor.shape)}, "
                f"the config gives {tuple(spec.shape)}"
            )
        full[name] = tensor
    return full
