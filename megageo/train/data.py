"""Which samples each rank trains on: a seeded shuffle per epoch, cut into global batches, sharded over DP.

The order depends only on (seed, epoch), never on the layout: global batch `k` holds the same windows whether
one process or eight DP replicas train, and each DP rank takes a contiguous share of it (TP and PP ranks of one
replica read the same samples). The position is a pure function of the step, so resuming needs no iterator
state. Leftover windows at an epoch's end are dropped, as DistributedSampler(drop_last=True) does. Under context
parallelism the CP ranks of a replica take the same samples, each reading only its block of frames; only the
last CP rank reads the targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from megageo.errors import MegageoError

Batch = tuple[torch.Tensor, torch.Tensor]


def check_batch(global_batch: int, micro_batch: int, dp_size: int) -> None:
    """Global batch = micro-batch x gradient accumulation x DP, so it must divide evenly (checked up front)."""
    if global_batch % (micro_batch * dp_size):
        raise MegageoError(
            f"train.global_batch_size={global_batch} is not a multiple of train.micro_batch_size={micro_batch} "
            f"x {dp_size} data-parallel ranks = {micro_batch * dp_size}"
        )


@dataclass(frozen=True)
class Sharding:
    global_batch: int
    micro_batch: int
    dp_rank: int
    dp_size: int
    cp_rank: int = 0
    cp_size: int = 1

    def __post_init__(self) -> None:
        check_batch(self.global_batch, self.micro_batch, self.dp_size)

    def local(self, indices: torch.Tensor) -> torch.Tensor:
        """This DP rank's contiguous share of one batch's indices."""
        share = len(indices) // self.dp_size
        return indices[self.dp_rank * share : (self.dp_rank + 1) * share]


def collate(dataset: Dataset, indices: torch.Tensor, sharding: Sharding) -> Batch:
    """This rank's block of each window's inputs, and the targets on the rank whose block ends the sequence."""
    targets = sharding.cp_rank == sharding.cp_size - 1
    xs, ys = zip(*(dataset.read_window(int(i), sharding.cp_rank, sharding.cp_size, targets) for i in indices))
    return torch.stack(xs), torch.stack(ys)


class TrainBatches:
    """Micro-batches of training step `step` for this rank, in accumulation order."""

    def __init__(self, dataset: Dataset, sharding: Sharding, seed: int):
        self.dataset, self.sharding, self.seed = dataset, sharding, seed
        self.batches_per_epoch = len(dataset) // sharding.global_batch
        if self.batches_per_epoch == 0:
            raise MegageoError(
                f"the training split has {len(dataset)} windows, fewer than one global batch of {sharding.global_batch}"
            )

    def global_indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.batches_per_epoch)
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed + epoch))
        size = self.sharding.global_batch
        return order[position * size : (position + 1) * size]

    def micro_batches(self, step: int) -> Iterator[Batch]:
        local = self.sharding.local(self.global_indices(step))
        for chunk in local.split(self.sharding.micro_batch):
            yield collate(self.dataset, chunk, self.sharding)


def validation_batches(dataset: Dataset, sharding: Sharding, samples: int) -> list[Batch]:
    """The fixed validation batch: the first `samples` windows of the val split, rounded down to whole
    micro-batches on every DP rank, sharded like a training batch and read once."""
    per_round = sharding.micro_batch * sharding.dp_size
    usable = min(samples, len(dataset)) // per_round * per_round
    if usable == 0:
        raise MegageoError(
            f"the validation batch needs at least {per_round} windows (micro-batch x DP); "
            f"train.eval_samples={samples}, val split has {len(dataset)}"
        )
    local = sharding.local(torch.arange(usable))
    return [collate(dataset, chunk, sharding) for chunk in local.split(sharding.micro_batch)]
