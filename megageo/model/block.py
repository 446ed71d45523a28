"""One backbone layer: pre-norm mixer with residual, then (except Mamba2) pre-norm SwiGLU with residual."""

from __future__ import annotations

import torch

from megageo.config import ModelConfig
from megageo.model import mixers  # noqa: F401  (importing the package registers the six mixer layers)
from megageo.model.mlp import SwiGLU, swiglu_width
from megageo.model.norm import RMSNorm
from megageo.model.parallel_layers import TensorParallelContext
from megageo.model.registry import build_mixer


class Block(torch.nn.Module):
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
        x = x + self.mixer(self.mixer_norm(x))
        if hasattr(self, "mlp"):
            x = x + self.mlp(self.mlp_norm(x))
        return x
