"""The unsharded model as the conversion tools see it: full shape and TP partition per `Forecaster` name.

The shapes and partitions come from a TP=1 skeleton of the run's model (its task's: a `Forecaster`, or
`megageo.da`'s denoiser), so they are read from the declarations next
to each module (`megageo.parallel.partition`) rather than guessed from names. Partitions hold full segment
widths, so the TP=1 declarations describe the split at every TP degree. Building at TP=1 needs no process group.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from megageo.config import Config
from megageo.errors import MegageoError
from megageo.parallel.partition import Partition, partition_of
from megageo.train.engine import parameter_groups
from megageo.train.pipeline import layer_names
from megageo.train.tasks import unsharded_model


@dataclass(frozen=True)
class ParameterSpec:
    shape: torch.Size
    partition: Partition | None

    def describe(self) -> str:
        if self.partition is None:
            return "replicated"
        return f"split dim {self.partition.dim}, segments {list(self.partition.segments)}"

    def shard(self, full: torch.Tensor, rank: int, tp: int) -> torch.Tensor:
        return self.partition.shard(full, rank, tp) if self.partition is not None else full

    def unshard(self, shards: list[torch.Tensor]) -> torch.Tensor:
        if self.partition is None or len(shards) == 1:
            return shards[0].clone()
        return self.partition.unshard(shards)


class ModelLayout:
    """Every parameter of the model a config and frame shape describe, in module order."""

    def __init__(self, config: Config, frame_shape: tuple[int, int, int]):
        self.config, self.frame_shape = config, frame_shape
        self.skeleton = unsharded_model(config, frame_shape)
        self.params = {
            name: ParameterSpec(param.shape, partition_of(param)) for name, param in self.skeleton.named_parameters()
        }
        self.layer_prefixes = layer_names(config.model.num_layers)

    def check_tensor_parallel(self, tp: int) -> None:
        for name, spec in self.params.items():
            if spec.partition is not None:
                try:
                    spec.partition.check(tp)
                except ValueError as error:
                    raise MegageoError(f"{name}: {error}") from None

    def full_name(self, local_name: str, pipelined: bool) -> str:
        """`Forecaster` name of a parameter as a rank's module names it (`{layer}.{rest}` in a PipelineModule)."""
        if not pipelined:
            return local_name
        layer, rest = local_name.split(".", 1)
        return self.layer_prefixes[int(layer)] + rest

    def stage_layers(self, pp: int) -> list[range]:
        """Pipeline layer indices of each stage, split as the engine's `PipelineModule` splits them."""
        from deepspeed.runtime.utils import partition_balanced

        is_block = [0, *([1] * self.config.model.num_layers), 0]
        bounds = [int(bound) for bound in partition_balanced(weights=is_block, num_parts=pp)]
        return [range(start, stop) for start, stop in zip(bounds, bounds[1:])]

    def optimizer_order(self, layers: range | None) -> list[str]:
        """Names in the order of a plain (ZeRO-0) optimizer's state ids: `parameter_groups` over the rank's
        parameters (the whole model, or one pipeline stage's layers)."""
        prefixes = tuple(self.layer_prefixes[index] for index in layers) if layers is not None else ("",)
        names = {id(p): name for name, p in self.skeleton.named_parameters() if name.startswith(prefixes)}
        kept = [p for p in self.skeleton.parameters() if id(p) in names]
        module = torch.nn.ParameterList(kept)
        return [names[id(p)] for group in parameter_groups(module, 0.0) for p in group["params"]]
