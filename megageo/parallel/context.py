"""Context parallelism (CP): the frames of one sample split into contiguous blocks, one per CP rank.

Rank r of c holds frames [r·s/c, (r+1)·s/c). Blocks are contiguous, not zig-zagged, because a recurrence can only
be handed forward in order. Everything a rank needs from earlier blocks travels through one differentiable
primitive, `all_gather_blocks` (and a non-causal state through `all_reduce_sum`), built on the two collectives gloo and NCCL both have (all_gather, all_reduce), so
every CP path runs on a CPU box: the linear mixers' state hand-off (`megageo.model.state_passing`), the short
convolution's halo and softmax attention's keys and values.

The groups are Megatron-core's (`initialize_model_parallel(context_parallel_size=...)`, order tp-cp-ep-dp-pp).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ContextParallel:
    """Which block of the sequence this rank holds: `rank` of `size` (size 1: the whole sequence)."""

    size: int = 1
    rank: int = 0

    @classmethod
    def current(cls) -> ContextParallel:
        from megatron.core import parallel_state

        return cls(parallel_state.get_context_parallel_world_size(), parallel_state.get_context_parallel_rank())

    @property
    def group(self) -> dist.ProcessGroup:
        from megatron.core import parallel_state

        return parallel_state.get_context_parallel_group()

    @property
    def is_last(self) -> bool:
        """The last block ends with the sequence's last frame, which the forecast head reads."""
        return self.rank == self.size - 1

    def block(self, length: int) -> slice:
        """This rank's frames of a sequence of `length` (a multiple of `size`)."""
        share = length // self.size
        return slice(self.rank * share, (self.rank + 1) * share)


class _AllGatherBlocks(torch.autograd.Function):
    """Forward: every rank's `x`, stacked in rank order. Backward: each rank's gradient is the sum over ranks of
    the gradient that reached its slot (an all-reduce of the stacked gradient, then this rank's slot)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cp: ContextParallel) -> torch.Tensor:
        ctx.cp = cp
        x = x.contiguous()
        blocks = [torch.empty_like(x) for _ in range(cp.size)]
        dist.all_gather(blocks, x, group=cp.group)
        return torch.stack(blocks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.cp.group)
        return grad[ctx.cp.rank], None


def all_gather_blocks(x: torch.Tensor, cp: ContextParallel) -> torch.Tensor:
    """`[cp.size, *x.shape]`: `x` of every CP rank, differentiable.

    Every rank must use the result in its loss's graph (a zero factor will do): the backward is a collective, and
    a rank that skipped it would leave the others waiting."""
    return _AllGatherBlocks.apply(x, cp)


class _AllReduceSum(torch.autograd.Function):
    """Forward: the sum of every rank's `x`. Backward: every rank's output fed its own loss, so each input's
    gradient is the sum of all of them (an all-reduce again)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cp: ContextParallel) -> torch.Tensor:
        ctx.cp = cp
        total = x.clone()
        dist.all_reduce(total, group=cp.group)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.cp.group)
        return grad, None


def all_reduce_sum(x: torch.Tensor, cp: ContextParallel) -> torch.Tensor:
    """The sum of `x` over the CP ranks, differentiable (a non-causal mixer's state over the whole sequence);
    `x` itself where there is one block."""
    return x if cp.size == 1 else _AllReduceSum.apply(x, cp)


def neighbour_block(part: torch.Tensor, cp: ContextParallel, offset: int) -> torch.Tensor:
    """The `part` (e.g. the last or first frames) of the rank `offset` places away (−1: the previous rank, +1:
    the next); zeros where that rank is past the sequence's end, as a zero padding there would be (a causal
    convolution's halo, or a centred one's on either side)."""
    blocks = all_gather_blocks(part, cp)
    neighbour = cp.rank + offset
    if not 0 <= neighbour < cp.size:
        return blocks[0] * 0  # keeps this rank in the gather's backward
    return blocks[neighbour]
