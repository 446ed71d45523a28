"""Each grid point's mean over a store's training split, for `data.normalisation: grid_point`.

A window normalised per channel is mostly the time-mean field (the pole-to-equator gradient of Z500 holds most of
its variance); what a forecast or an analysis has to find is the departure from it. Normalised per grid point, a
model sees only those anomalies, at unit variance per channel: a diffusion prior then spends its noise levels on
them instead of on redrawing the mean field.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megageo.data.store import Store

BLOCK_FRAMES = 256
"""Frames read at a time, so a multi-decade split never sits in memory whole."""


def grid_point_moments(store: Store, channels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(mean [C, H, W], anomaly std [C]) of `channels` over the training split, in float64: the mean of each grid
    point over time, and the rms of the departures from it over time and the whole grid."""
    total = np.zeros((len(channels), *store.shape[2:]))
    squares = np.zeros_like(total)
    for start in range(0, store.train_end, BLOCK_FRAMES):
        block = store.read(start, min(start + BLOCK_FRAMES, store.train_end))[:, list(channels)].astype(np.float64)
        total += block.sum(0)
        squares += np.square(block).sum(0)
    mean = total / store.train_end
    variance = np.clip(squares / store.train_end - np.square(mean), 0, None)
    return mean, np.sqrt(variance.mean(axis=(1, 2)))


def as_field(values: np.ndarray) -> np.ndarray:
    """Per-channel values [C] as [C, 1, 1]; per-point ones [C, H, W] as they are: either broadcasts over frames."""
    return values[:, None, None] if values.ndim == 1 else values
