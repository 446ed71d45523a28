"""Parameter counts by part and FLOPs per token of a model configuration (`megageo model summary`), read off the
TP=1 model of its task: a forecaster, or the denoiser of `task: diffusion`, whose noise-level embedding and head
convolution a forecaster lacks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from megatron.core.tensor_parallel.layers import ColumnParallelLinear, RowParallelLinear

from megageo.config import ModelConfig
from megageo.model.conv import ShortConvolution
from megageo.model.flops import forward_flops_per_token
from megageo.model.tokens import tokens_per_frame

PARTS = {"input": "input projection", "backbone": "backbone", "head": "head"}
LINEAR_TYPES = (ColumnParallelLinear, RowParallelLinear, torch.nn.Linear)


@dataclass
class ModelSummary:
    params: dict[str, int]
    matmul_params: dict[str, int]
    conv_channels: int
    tokens_per_frame: int = 1

    @property
    def total(self) -> int:
        return sum(self.params.values())

    def flops_per_frame(self, config: ModelConfig, frames: int) -> float:
        """Forward FLOPs per input frame of a window of `frames`: its tokens' FLOPs, whatever a token is."""
        return self.tokens_per_frame * self.flops_per_token(config, frames * self.tokens_per_frame)

    def flops_per_token(self, config: ModelConfig, seq_len: int) -> float:
        """Forward FLOPs per token of a sequence of `seq_len` tokens (frames × tokens per frame)."""
        return forward_flops_per_token(config, self.matmul_params, self.conv_channels, seq_len, self.tokens_per_frame)


MODULE_PARTS = {"input": "input", "noise_level": "input", "blocks": "backbone", "head": "head"}
"""The part each top-level module counts in: a denoiser's noise-level embedding conditions its input."""


def part_of(name: str) -> str:
    """The part (`PARTS`) of a parameter or module name of the model."""
    return MODULE_PARTS[name.split(".", 1)[0]]


def summarize(model: torch.nn.Module, config: ModelConfig, frame_shape: tuple[int, int, int]) -> ModelSummary:
    """Count `model`, the TP=1 model of `config` built without initialising its weights
    (`megageo.train.tasks.unsharded_model`, or `megageo.model.forecaster.unsharded_forecaster`)."""
    params = dict.fromkeys(PARTS, 0)
    for name, param in model.named_parameters():
        params[part_of(name)] += param.numel()
    matmul = dict.fromkeys(PARTS, 0)
    conv_channels = 0
    for name, module in model.named_modules():
        if isinstance(module, LINEAR_TYPES):
            matmul[part_of(name)] += module.weight.numel()
        elif isinstance(module, ShortConvolution):
            conv_channels += module.weight.shape[0]
    return ModelSummary(params, matmul, conv_channels, tokens_per_frame(config, frame_shape))


def format_summary(config: ModelConfig, summary: ModelSummary, seq_lens: list[int]) -> str:
    tokens = (f", {summary.tokens_per_frame} tokens per frame (patch {config.patch_size})"
              if config.tokens == "patch" else "")
    lines = [f"mixer {config.mixer.type}: {config.num_layers} layers, hidden {config.hidden_size}, "
             f"{config.mixer.num_heads} heads{tokens}"]
    for key, label in PARTS.items():
        lines.append(f"  {label:<18}{summary.params[key]:>14,d} parameters")
    lines.append(f"  {'total':<18}{summary.total:>14,d} parameters ({summary.total / 1e6:.1f} M)")
    for frames in seq_lens:
        forward = summary.flops_per_token(config, frames * summary.tokens_per_frame)
        lines.append(f"  {frames:>7,d} frames ({frames * summary.tokens_per_frame:,d} tokens): {forward / 1e9:9.4g} "
                     f"GFLOP/token forward, {3 * forward / 1e9:9.4g} GFLOP/token training")
    return "\n".join(lines)
