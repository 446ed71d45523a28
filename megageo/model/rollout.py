"""Autoregressive rollout: forecasts beyond a model's T_out by feeding its predictions back as inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch

from megageo.errors import MegageoError

StepFn = Callable[[torch.Tensor], torch.Tensor]


def leads_for_hours(max_lead_hours: float, step_hours: float = 6.0) -> int:
    """Number of frames that reach ``max_lead_hours`` on the 6-hourly reanalysis clock (5 days → 20)."""
    steps = max_lead_hours / step_hours
    if steps < 1 or steps != int(steps):
        raise MegageoError(f"lead {max_lead_hours:g} h is not a positive multiple of the {step_hours:g} h time step")
    return int(steps)


def rollout(step_fn: StepFn, window: torch.Tensor, n_leads: int) -> torch.Tensor:
    """Forecast ``n_leads`` frames ``[B, n_leads, C, H, W]`` from an initial ``window`` ``[B, T_in, C, H, W]``.

    ``step_fn`` maps a window of T_in (normalised) frames to the next T_out frames. After each call the
    window slides forward by T_out: its oldest frames drop out and the predictions become its newest,
    so the model always sees the T_in frames immediately before the ones it predicts. The last call may
    produce more than needed; the extra frames are discarded. Gradients flow unless the caller runs
    this under ``torch.no_grad()``, as evaluation should.
    """
    if window.ndim != 5 or n_leads < 1:
        raise MegageoError(f"rollout needs a window [B, T_in, C, H, W] and n_leads >= 1, got {tuple(window.shape)}, "
                           f"{n_leads}")
    t_in = window.shape[1]
    forecasts: list[torch.Tensor] = []
    produced = 0
    while produced < n_leads:
        step = step_fn(window)
        if step.ndim != 5 or step.shape[1] < 1 or step.shape[0] != window.shape[0] or step.shape[2:] != window.shape[2:]:
            raise MegageoError(f"step_fn turned a window {tuple(window.shape)} into {tuple(step.shape)}, "
                               "expected [B, T_out, C, H, W] with the window's B, C, H, W")
        forecasts.append(step)
        produced += step.shape[1]
        window = torch.cat([window, step], dim=1)[:, -t_in:]
    return torch.cat(forecasts, dim=1)[:, :n_leads]
