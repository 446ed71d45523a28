"""What one position of the backbone's sequence is: a whole frame, or one patch of a frame (spatiotemporal tokens).

The mixers read it from their `TensorParallelContext`: the Transformer to place 3-D rotary positions and a
frame-causal mask, the linear mixers to read each frame's state, the non-causal mixer not at all. Frames are
time-major (`frame · tokens_per_frame + row · cols + col`), so context-parallel blocks of whole frames are
blocks of whole token frames too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SequenceLayout:
    patch_rows: int = 1
    patch_cols: int = 1
    frame_causal: bool = False
    """Tokens see every token of their own frame (and of earlier frames), not only the ones before them."""

    @property
    def tokens_per_frame(self) -> int:
        return self.patch_rows * self.patch_cols

    @property
    def is_tokenized(self) -> bool:
        return self.tokens_per_frame > 1
