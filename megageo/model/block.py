"""One backbone layer: pre-norm mixer with residual, then (except Mamba2) pre-norm SwiGLU with residual."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

from megageo.config import ModelConfig
from megageo.model import mixers  # noqa: F401  (importing the package registers the six mixer layers)
from megageo.model.mlp import SwiGLU, swiglu_width
from megageo.model.norm import RMSNorm
from megageo.model.parallel_layers import TensorParallelContext
from megageo.model.registry import build_mixer


class Block(torch.nn.Module):
    recompute: bool = False
    """Activation checkpointing: keep only each sub-layer's input and recompute the sub-layer in backward. The mixer
    and the MLP are recomputed separately, so backward holds one of them at a time, not both (at long context the
    recomputed activations, not the weights, bound the longest sequence)."""

    def __init__(self, config: ModelConfig, ctx: TensorParallelContext):
        super().__init__()
        hidden = config.hidden_size
        self.mixer_norm = RMSNorm(hidden, ctx, config.norm_eps)
        self.mixer = build_mixer(config.mixer, hidden, ctx, config.norm_eps)
        if config.mixer.has_mlp:
            self.mlp_norm = RMSNorm(hidden, ctx, config.norm_eps)
            self.mlp = SwiGLU(hidden, swiglu_width(hidden, config.ffn_hidden_size), ctx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [s_local, b, hidden] (sequence-first, as in Megatron)."""
        x = x + self._sublayer(self._mix, x)
        if hasattr(self, "mlp"):
            x = x + self._sublayer(self._feed_forward, x)
        return x

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixer(self.mixer_norm(x))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.mlp_norm(x))

    def _sublayer(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return checkpoint(fn, x, use_reentrant=False) if self.recompute and torch.is_grad_enabled() else fn(x)


def recompute_blocks(model: torch.nn.Module) -> None:
    """Turn on activation checkpointing in every block of `model` (a Forecaster or a pipeline stage)."""
    for module in model.modules():
        if isinstance(module, Block):
            module.recompute = True
