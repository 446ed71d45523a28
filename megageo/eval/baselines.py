"""Reference forecasts for the same samples as a model, shaped like its forecasts ``[N, T_out, C, H, W]``.

Persistence bounds skill from below at short leads (Z500 is strongly autocorrelated); climatology
bounds it at long leads. The seed paper's "climatology" is the batch-mean truth, which peeks at the
verifying fields; it is kept under its own name so that it is never mistaken for a real forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from megageo.errors import MegageoError
from megageo.eval.climatology import Climatology

PERSISTENCE = "persistence"
CLIMATOLOGY = "climatology"
BATCH_MEAN = "climatology (paper: batch mean)"


def persistence(inputs: np.ndarray, t_out: int) -> np.ndarray:
    """The paper's ŷ_t = x_{T_in}: the last input frame ``inputs[:, -1]`` repeated for every lead."""
    if inputs.ndim != 5 or t_out < 1:
        raise MegageoError(f"persistence needs inputs [N, T_in, C, H, W] and t_out >= 1, got {inputs.shape}, {t_out}")
    return np.repeat(inputs[:, -1:], t_out, axis=1)


def climatology_forecast(climatology: Climatology, valid_times: Any) -> np.ndarray:
    """The day-of-year/hour-of-day climatology at each sample's valid times ``[N, T_out]``."""
    return climatology.lookup(valid_times)


def batch_mean_forecast(truth: np.ndarray) -> np.ndarray:
    """The paper's climatology, ŷ_t = ȳ: the mean truth over the batch (axis 0), the same for every sample."""
    return np.broadcast_to(truth.mean(axis=0, keepdims=True), truth.shape)


def baseline_forecasts(inputs: np.ndarray, truth: np.ndarray, climatology: Climatology,
                       valid_times: Any) -> dict[str, np.ndarray]:
    """All three baselines for samples with ``inputs`` ``[N, T_in, ...]`` verifying on ``truth`` ``[N, T_out, ...]``."""
    return {
        PERSISTENCE: persistence(inputs, truth.shape[1]),
        CLIMATOLOGY: climatology_forecast(climatology, valid_times),
        BATCH_MEAN: batch_mean_forecast(truth),
    }
