"""Softmax attention with rotary positions: the quadratic baseline the linear mixers are measured against."""

from __future__ import annotations

import torch

from megageo.mixer_configs import TransformerConfig
from megageo.model.mixers.base import TensorParallelMixer, heads
from megageo.model.registry import register_mixer
from megageo.model.rope import apply_rope, token_positions
from megageo.ops import causal_attention, frame_causal_attention
from megageo.parallel.context import all_gather_blocks


@register_mixer("transformer", TransformerConfig)
class Attention(TensorParallelMixer):
    def projection_segments(self) -> dict[str, int]:
        width = self.config.num_heads * self.config.head_dim
        return {"q": width, "k": width, "v": width}

    def output_width(self) -> int:
        return self.segments["v"]

    def mix(self, parts: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Under context parallelism (Llama 3's recipe) queries stay local while the keys and values of every block
        are all-gathered; rank r attends over blocks 0…r, its queries being the last block of those keys. Its K/V memory
        grows with its position in the sequence, up to the whole sequence on the last rank. Over tokens, positions
        are 3-D and a frame-causal model lets every token attend to its whole frame."""
        cp, sequence = self.ctx.cp, self.ctx.sequence
        positions = token_positions(sequence, cp.rank * x.shape[1], x.shape[1], x.device)
        q, k, v = (heads(parts[name], self.config.head_dim) for name in ("q", "k", "v"))
        q, k = (apply_rope(t, positions, self.config.rope_base) for t in (q, k))
        if cp.size > 1:
            k, v = (all_gather_blocks(t, cp)[: cp.rank + 1].transpose(0, 1).flatten(1, 2) for t in (k, v))
        if sequence.frame_causal and sequence.is_tokenized:
            return frame_causal_attention(q, k, v, sequence.tokens_per_frame).flatten(-2)
        return causal_attention(q, k, v).flatten(-2)
