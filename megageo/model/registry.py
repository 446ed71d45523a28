"""Mixer layers by config class: each mixer module registers its layer under the config class that
`megageo.mixer_configs` declared (and `load_config` builds), so registration only flows from the model down."""

from __future__ import annotations

import torch

from megageo.mixer_configs import MixerConfig
from megageo.model.parallel_layers import TensorParallelContext

MIXERS: dict[type[MixerConfig], type[torch.nn.Module]] = {}


def register_mixer(name: str, config_class: type[MixerConfig]):
    """Make the decorated layer the module built for `config_class`, the config registered as `name`."""
    if MixerConfig.registry.get(name) is not config_class:
        raise TypeError(f"{config_class.__name__} is not the config registered for mixer {name!r}")

    def decorate(layer: type[torch.nn.Module]) -> type[torch.nn.Module]:
        MIXERS[config_class] = layer
        return layer

    return decorate


def build_mixer(config: MixerConfig, hidden_size: int, ctx: TensorParallelContext, eps: float) -> torch.nn.Module:
    return MIXERS[type(config)](config, hidden_size, ctx, eps)
