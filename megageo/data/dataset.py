"""Training windows over a store: `T_in` input frames followed by `T_out` target frames, normalised per channel
(`channel`: its mean and std over the training split) or per grid point (`grid_point`: `megageo.data.anomalies`).

The split is chronological without leakage: a training window lies wholly before `train_end` (inputs and
targets), a validation window starts at or after it, so no frame is seen by both. No window spans a gap
(`Store.gaps`: a missing year, or the seam between separate runs). Each sample reads one
contiguous time slice; `read_window(i, part, parts, targets)` reads only one context-parallel rank's block of the
inputs, and the targets only where asked (the last block's rank).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from megageo.config import NORMALISATIONS
from megageo.data.anomalies import as_field, grid_point_moments
from megageo.data.store import Store
from megageo.errors import MegageoError


class WindowDataset(Dataset):
    def __init__(
        self,
        store_path: str | Path,
        split: str = "train",
        t_in: int = 8,
        t_out: int = 1,
        stride: int = 1,
        variables: Sequence[str] | None = None,
        levels: Sequence[float] | None = None,
        frames_dtype: torch.dtype = torch.float32,
        normalisation: str = "channel",
        statistics: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        """`statistics`: the (mean, std) `normalisation` gives, when another split of the store has them already
        (a `grid_point` mean reads the whole training split)."""
        if split not in ("train", "val"):
            raise MegageoError(f"split must be 'train' or 'val', got '{split}'")
        if normalisation not in NORMALISATIONS:
            raise MegageoError(f"normalisation must be channel or grid_point, got {normalisation!r}")
        if min(t_in, t_out, stride) < 1:
            raise MegageoError(f"t_in, t_out and stride must be >= 1, got {t_in}, {t_out}, {stride}")
        self.store = Store(store_path)
        self.split, self.t_in, self.t_out, self.frames_dtype = split, t_in, t_out, frames_dtype
        i = self.store.first_irregular_step()
        if i is not None:
            raise MegageoError(
                f"{self.store.path}: irregular time step ({self.store.steps()[i]:g} h after frame {i}: "
                f"{self.store.dates(i)[0]}, where the step is {self.store.regular_step():g} h); windows need a "
                "regular step, not means"
            )
        self.step_hours = self.store.regular_step()
        self.channels = self.store.channels(variables, levels)
        if statistics is not None:
            mean, std = statistics
        elif normalisation == "grid_point":
            mean, std = grid_point_moments(self.store, self.channels)
        else:
            mean, std = self.store.mean[self.channels], self.store.std[self.channels]
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)  # [C] or [C, H, W]; [C]
        span = t_in + t_out
        first, end = (0, self.store.train_end) if split == "train" else (self.store.train_end, len(self.store))
        self.starts = self.store.window_starts(first, end, span, stride)
        if self.starts.size == 0:
            raise MegageoError(
                f"{self.store.path}: the {split} split (frames {first}..{end - 1}) has no window of "
                f"{t_in} + {t_out} frames{' between its gaps' if self.store.gaps().size else ''}"
            )

    def __len__(self) -> int:
        return self.starts.size

    def normalized_frames(self, start: int, stop: int) -> torch.Tensor:
        """frames[start:stop] of this dataset's levels, normalised: [n, C, H, W] in the dataset's frame dtype."""
        block = self.store.read(start, stop)[:, self.channels]
        return torch.from_numpy((block - as_field(self.mean)) / as_field(self.std)).to(self.frames_dtype)

    def read_window(
        self, index: int, part: int = 0, parts: int = 1, targets: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of window `index`, with x only rank `part`'s contiguous 1/parts of the T_in input frames, and y
        empty ([0, C, H, W], nothing read) unless `targets`."""
        if self.t_in % parts or not 0 <= part < parts:
            raise MegageoError(f"cannot give part {part} of {parts} of {self.t_in} input frames")
        start = int(self.starts[index])
        share = self.t_in // parts
        x = self.normalized_frames(start + part * share, start + (part + 1) * share)
        target_stop = start + self.t_in + (self.t_out if targets else 0)
        return x, self.normalized_frames(start + self.t_in, target_stop)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x [T_in, C, H, W], y [T_out, C, H, W], float32, normalised; one contiguous read."""
        start = int(self.starts[index])
        frames = self.normalized_frames(start, start + self.t_in + self.t_out)
        return frames[: self.t_in], frames[self.t_in :]

    def valid_times(self, index: int) -> np.ndarray:
        """Datetimes of the target frames of window `index` (for lead times and climatology)."""
        start = int(self.starts[index]) + self.t_in
        return self.store.dates(np.arange(start, start + self.t_out))

    def denormalize(self, fields: torch.Tensor) -> torch.Tensor:
        """Normalised [..., C, H, W] back to metres."""
        mean = torch.as_tensor(as_field(self.mean), dtype=fields.dtype, device=fields.device)
        std = torch.as_tensor(as_field(self.std), dtype=fields.dtype, device=fields.device)
        return fields * std + mean
