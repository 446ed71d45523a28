"""The input projection's matrix product, lean on memory: the frames are the largest tensor of a long-context run.

Megatron's row-parallel linear saves its input (the frames) and, in backward, always computes the input's
gradient: a second frame-sized buffer although frames need none. This product computes that gradient only when
asked, and accepts frames stored in bf16 (half the bytes), projecting them in fp32 a time-chunk at a time so no
fp32 copy of the whole input ever exists. With fp32 frames the result is the plain product.
"""

from __future__ import annotations

import torch

FRAMES_PER_CHUNK = 4096
"""Frames converted to the weight's dtype at once when they are stored in a narrower dtype (~170 MB at 73×144)."""


class _ProjectFrames(torch.autograd.Function):
    @staticmethod
    def forward(ctx, frames: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(frames, weight)
        return _chunked(frames, weight.dtype, lambda chunk: chunk @ weight.t())

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        frames, weight = ctx.saved_tensors
        grad_frames = (grad @ weight).to(frames.dtype) if ctx.needs_input_grad[0] else None
        flat_grad = grad.reshape(-1, grad.shape[-1])
        flat_frames = frames.reshape(-1, frames.shape[-1])
        if frames.dtype == weight.dtype:
            return grad_frames, flat_grad.t() @ flat_frames
        grad_weight = torch.zeros_like(weight)
        for start in range(0, flat_frames.shape[0], FRAMES_PER_CHUNK):
            stop = start + FRAMES_PER_CHUNK
            grad_weight += flat_grad[start:stop].t().to(weight.dtype) @ flat_frames[start:stop].to(weight.dtype)
        return grad_frames, grad_weight


def _chunked(frames: torch.Tensor, dtype: torch.dtype, product) -> torch.Tensor:
    if frames.dtype == dtype:
        return product(frames)
    return torch.cat([product(chunk.to(dtype)) for chunk in frames.split(FRAMES_PER_CHUNK, dim=0)], dim=0)


def project_frames(frames: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """frames [T, B, F] (any float dtype) @ weightᵀ [F, hidden] → [T, B, hidden] in the weight's dtype."""
    return _ProjectFrames.apply(frames, weight)
