"""Mixers by name: each mixer module registers its config class (in `MixerConfig.registry`) and its layer here."""

from __future__ import annotations

import torch

from megageo.config import MixerConfig
from megageo.model.parallel_layers import TensorParallelContext

MIXERS: dict[type[MixerConfig], type[torch.nn.Module]] = {}


def register_mixer(name: str, config_class: type[MixerConfig]):
    """Register `config_class` under `name` for `model.mixer.type`, and the decorated layer as its module."""

    def decorate(layer: type[torch.nn.Module]) -> type[torch.nn.Module]:
        MixerConfig.register(name)(config_class)
        MIXERS[config_class] = layer
        return layer

    return decorate


def build_mixer(config: MixerConfig, hidden_size: int, ctx: TensorParallelContext, eps: float) -> torch.nn.Module:
    return MIXERS[type(config)](config, hidden_size, ctx, eps)

