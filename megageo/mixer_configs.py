"""Mixer settings, one dataclass per mixer, registered under the name `model.mixer.type` picks.

They are plain data: the config floor reads them (levanter-style choice registry) and each mixer layer in
`megageo.model.mixers` names its config class when it registers (`model.registry`), so registration flows one way
(model -> config) and `load_config` never needs the model package imported. A mixer defined outside megageo
registers its own subclass with `MixerConfig.register(name)` before its configs are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from megageo.errors import MegageoError


@dataclass
class MixerConfig:
    """Base of the per-mixer settings; subclasses register under the name used in `model.mixer.type`."""

    registry: ClassVar[dict[str, Any]] = {}
    """Mixer name → its config class (a plain annotation: `type` below shadows the builtin here)."""
    type: ClassVar[str] = ""

    has_mlp: ClassVar[bool] = True
    """Mamba2 blocks are mixer-only (as in fla's Mamba2 model); every other mixer is followed by a SwiGLU."""

    supports_frame_causal: ClassVar[bool] = True
    """Whether the layer can let tokens see their whole frame (`model.frame_causal`): softmax attention by its mask,
    GLA and SSD by reading each frame's state (`megageo.ops.frame_causal`). The delta-rule family cannot: the
    state after a frame is a product of non-commuting (I − β k kᵀ) updates, with no per-frame closed form."""

    num_heads: int = 4

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        """Mixer-specific shape checks, raising MegageoError; `num_heads` vs TP is checked for every mixer."""

    @classmethod
    def register(cls, name: str):
        def decorate(subclass: type[MixerConfig]) -> type[MixerConfig]:
            subclass.type = name
            cls.registry[name] = subclass
            return subclass

        return decorate


@MixerConfig.register("transformer")
@dataclass
class TransformerConfig(MixerConfig):
    num_heads: int = 16
    head_dim: int = 64
    rope_base: float = 10000.0

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        if self.head_dim % 2:
            raise MegageoError(f"model.mixer.head_dim must be even for rotary embeddings, got {self.head_dim}")


@MixerConfig.register("gla")
@dataclass
class GLAConfig(MixerConfig):
    num_heads: int = 4
    expand_k: float = 0.5
    expand_v: float = 1.0
    gate_low_rank_dim: int = 16
    gate_logit_normalizer: float = 16.0
    use_short_conv: bool = False
    conv_size: int = 4

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        for name, expand in (("expand_k", self.expand_k), ("expand_v", self.expand_v)):
            width = hidden_size * expand
            if width != int(width) or int(width) % self.num_heads:
                raise MegageoError(
                    f"model.mixer.{name}={expand} gives width {width}, not a multiple of num_heads={self.num_heads}"
                )


@MixerConfig.register("deltanet")
@dataclass
class DeltaNetConfig(MixerConfig):
    supports_frame_causal: ClassVar[bool] = False

    num_heads: int = 8
    head_dim: int = 128
    use_output_gate: bool = False
    use_short_conv: bool = True
    conv_size: int = 4

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        if self.head_dim < 1:
            raise MegageoError(f"model.mixer.head_dim must be at least 1, got {self.head_dim}")


@MixerConfig.register("gated_deltanet")
@dataclass
class GatedDeltaNetConfig(MixerConfig):
    supports_frame_causal: ClassVar[bool] = False

    num_heads: int = 6
    head_dim: int = 256
    expand_v: float = 1.0
    use_short_conv: bool = True
    conv_size: int = 4

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        if self.head_dim * self.expand_v != int(self.head_dim * self.expand_v):
            raise MegageoError(f"model.mixer.head_dim·expand_v must be an integer, got {self.head_dim * self.expand_v}")


@MixerConfig.register("kda")
@dataclass
class KDAConfig(MixerConfig):
    supports_frame_causal: ClassVar[bool] = False

    num_heads: int = 6
    head_dim: int = 256
    use_short_conv: bool = True
    conv_size: int = 4


@MixerConfig.register("mamba2")
@dataclass
class Mamba2Config(MixerConfig):
    has_mlp: ClassVar[bool] = False

    num_heads: int = 32
    head_dim: int = 64
    expand: int = 2
    state_size: int = 128
    n_groups: int = 1
    use_short_conv: bool = True
    conv_size: int = 4

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        if self.num_heads * self.head_dim != self.expand * hidden_size:
            raise MegageoError(
                f"model.mixer: num_heads·head_dim = {self.num_heads * self.head_dim} must equal expand·hidden_size = "
                f"{self.expand * hidden_size} for mamba2"
            )
        if self.num_heads % self.n_groups or self.n_groups % tensor_parallel:
            raise MegageoError(
                f"model.mixer.n_groups={self.n_groups} must divide num_heads={self.num_heads} and be divisible by "
                f"parallel.tensor_parallel={tensor_parallel} (each TP rank owns whole B/C groups)"
            )
        if not self.use_short_conv:
            raise MegageoError("model.mixer.use_short_conv must be true for mamba2 (its conv is part of the layer)")


@MixerConfig.register("global_linear")
@dataclass
class GlobalLinearConfig(MixerConfig):
    """Non-causal linear attention: every position reads one state summed over the whole sequence (the denoiser
    of a window, or a forecaster whose inputs are all in the past anyway)."""

    num_heads: int = 4
    head_dim: int = 64
    grid_conv_size: int = 0
    """With `model.tokens: patch`, an odd k: a depthwise k × k convolution of v over each frame's patch grid is
    added to the attention's output (`megageo.model.grid_conv`), so a token sees its neighbours as well as the one
    global state. 0: none."""
    grid_conv_frames: int = 1
    """An odd number of frames, centred on a token's own, that the grid convolution also spans: a token then sees
    its neighbourhood before and after it, which a denoiser's frames need to cohere."""

    def validate(self, hidden_size: int, tensor_parallel: int) -> None:
        if self.grid_conv_size < 0 or (self.grid_conv_size and self.grid_conv_size % 2 == 0):
            raise MegageoError(f"model.mixer.grid_conv_size must be 0 or odd (a centred kernel), "
                               f"got {self.grid_conv_size}")
        if self.grid_conv_frames < 1 or self.grid_conv_frames % 2 == 0 or (self.grid_conv_frames > 1
                                                                          and not self.grid_conv_size):
            raise MegageoError(f"model.mixer.grid_conv_frames must be odd (a centred kernel) and above 1 only with a "
                               f"grid_conv_size; got {self.grid_conv_frames}")
