"""The job a layout must hold: the model of a config (parameters by part, FLOPs, kept activations) at a length.

Two facts depend on which version of megageo's model code runs, and are read from it rather than assumed:
- how frames enter (`frame_path`): Megatron's row-parallel input projection keeps a contiguous copy of the frames
  when the [B, T, ·] → [T, B, ·] transpose or the TP scatter needs one, and computes the frames' gradient in
  backward (a frame-sized buffer); `model/frame_projection.py`, where it exists, keeps the frames as they are
  (optionally bf16, `data.frames_dtype`) and never forms that gradient;
- what activation checkpointing recomputes together (`recompute_unit`): the whole block, or (where `Block` has
  its `recompute` switch) the mixer and the MLP as separate checkpoints.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from megageo.config import Config
from megageo.plan.activations import Term, backward_workspace, head_terms, layer_terms


def frame_path() -> str:
    """`lean` where megageo projects frames itself, `megatron` where Megatron's row-parallel layer does."""
    return "lean" if importlib.util.find_spec("megageo.model.frame_projection") is not None else "megatron"


def recompute_unit() -> str:
    from megageo.model.block import Block

    return "sublayer" if hasattr(Block, "recompute") else "block"


@dataclass(frozen=True)
class Job:
    config: Config
    frames: int
    """Input frames per sample (T_in)."""
    frame_values: int
    """C·H·W of one frame."""
    micro_batch: int
    params: dict[str, int]
    """Parameters by part: `input`, `backbone`, `head`."""
    replicated: dict[str, int]
    """Of those, the ones every TP rank holds whole (norms, low-rank gate inputs, biases of row layers)."""
    largest_layer: int
    """Parameters of the largest single module (ZeRO-3 gathers one at a time)."""
    flops_per_frame: float
    """Forward FLOPs per frame at this length (`megageo.model.flops`)."""
    frame_bytes: int
    frame_path: str
    recompute_unit: str
    tokens_per_frame: int = 1
    """Backbone positions per frame: 1, or the patches of a frame for a token model (`model.tokens: patch`)."""
    token_values: int = 0
    """C·p·p values of one patch token (token models only)."""

    @property
    def positions(self) -> int:
        """The backbone's sequence length: frames, or frames × tokens per frame."""
        return self.frames * self.tokens_per_frame

    @property
    def tokenized(self) -> bool:
        return self.config.model.tokens == "patch"

    @property
    def model(self):
        return self.config.model

    @property
    def num_layers(self) -> int:
        return self.config.model.num_layers

    def layer(self, kernels: str, positions: float, cp: int) -> list[Term]:
        return layer_terms(self.config.model, kernels, positions, cp, self.tokens_per_frame)

    def head(self) -> list[Term]:
        return head_terms(self.config.model.hidden_size)

    @property
    def backward_workspace(self) -> float:
        return backward_workspace(self.config.model)


def describe(config: Config, frames: int, frame_shape: tuple[int, int, int], micro_batch: int) -> Job:
    """Count the TP=1 model of `config` (built without initialising or touching its weights)."""
    from megageo.model.summary import part_of, summarize
    from megageo.model.tokens import PatchGrid
    from megageo.parallel.partition import partition_of
    from megageo.train.tasks import unsharded_model

    model_config = config.model
    model = unsharded_model(config, frame_shape)
    summary = summarize(model, model_config, frame_shape)
    replicated = dict.fromkeys(summary.params, 0)
    for name, param in model.named_parameters():
        if partition_of(param) is None:
            replicated[part_of(name)] += param.numel()
    largest = max(sum(p.numel() for p in module.parameters()) for module in
                  (model.input, model.head, *model.blocks))
    frame_bytes = 2 if getattr(config.data, "frames_dtype", "fp32") == "bf16" else 4
    channels, height, width = frame_shape
    token_values = PatchGrid.of(frame_shape, model_config.patch_size).token_values if model_config.tokens == "patch" else 0
    return Job(config, frames, channels * height * width, micro_batch, dict(summary.params), replicated, largest,
               summary.flops_per_frame(model_config, frames), frame_bytes, frame_path(), recompute_unit(),
               summary.tokens_per_frame, token_values)
