"""Symmetries of the training windows: new windows the data's own dynamics could have produced, for free.

The embedded shallow-water model has no topography and a solid-body westerly, and its random start is isotropic,
so a window rolled in longitude (`zonal_shift`) or mirrored north–south (`mirror`: the heights reflect, the
Coriolis parameter's sign flip is the dynamics' own symmetry) is as likely as the window itself. A prior trained
on 24 fifteen-day runs sees each window about thirty times in 2500 steps; the symmetries give it 144 (× 2)
versions of each instead. On real reanalyses they are approximations (topography and land pin the stationary
waves, the hemispheres differ): grid-point anomalies roll, but the climate they roll through does not.
"""

from __future__ import annotations

import torch


def augment(windows: torch.Tensor, symmetries: list[str], generator: torch.Generator) -> torch.Tensor:
    """`windows` [B, T, C, H, W] with each window rolled by its own uniform number of longitudes (`zonal_shift`)
    and mirrored with probability 1/2 (`mirror`), drawn from `generator` in that order, so every rank of a
    replica, holding its own block of the window's frames, moves them alike."""
    batch, width = windows.shape[0], windows.shape[-1]
    shifts = torch.randint(width, (batch,), generator=generator) if "zonal_shift" in symmetries else None
    mirrors = torch.rand(batch, generator=generator) < 0.5 if "mirror" in symmetries else None
    moved = []
    for index, window in enumerate(windows):
        if shifts is not None:
            window = window.roll(int(shifts[index]), dims=-1)
        if mirrors is not None and mirrors[index]:
            window = window.flip(-2)
        moved.append(window)
    return torch.stack(moved)
