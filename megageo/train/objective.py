"""What a training step minimises beyond the seed paper's plain MSE: per-row and per-lead weights."""

from __future__ import annotations

import numpy as np
import torch

from megageo.config import Config
from megageo.data.grid import latitude_weights


def loss_weights(config: Config, latitudes: np.ndarray) -> torch.Tensor | None:
    """Weights [leads, 1, H, 1] of each squared error, mean 1 over leads and rows (so a loss stays an average and
    its scale matches plain MSE), or None for the paper's plain MSE. Latitude weights are cell areas
    (WeatherBench 2's); lead weights are `train.lead_weights`, normalised."""
    train = config.train
    if not train.latitude_weighted_loss and not train.lead_weights:
        return None
    leads = config.data.t_out * train.rollout_steps
    rows = latitude_weights(latitudes) if train.latitude_weighted_loss else np.ones(len(latitudes))
    per_lead = np.asarray(train.lead_weights or np.ones(leads), dtype=np.float64)
    per_lead = per_lead / per_lead.mean()
    return torch.from_numpy(per_lead[:, None, None, None] * rows[None, None, :, None]).float()
