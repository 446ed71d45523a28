"""`diffusion.max_windows` bounds the windows the denoiser sees in one pass (a 340M prior's activations for a
16-member ensemble do not fit one GPU at once). A window's guided score involves only its own state and its own
observations, so a chunked draw is the unchunked one."""

from __future__ import annotations

import pytest
import torch
from tiny_denoiser import WINDOW_SHAPE, stations, tiny_denoiser


@pytest.mark.parametrize("guidance, per_window_y", [("gaussian", False), ("gaussian", True), (None, False)])
def test_chunks_of_windows_draw_the_same_ensemble(guidance: str | None, per_window_y: bool) -> None:
    from megageo.config import DiffusionConfig
    from megageo.da.observations import ObservationOperator
    from megageo.da.posterior import sample_posterior

    model = tiny_denoiser()
    flat_index, y, std = stations()
    if per_window_y:  # the twin's batched cycles: each window has its own observations
        y = y + torch.arange(5.0)[:, None] / 10
    observe = ObservationOperator(flat_index) if guidance else None

    def draw(max_windows: int) -> torch.Tensor:
        settings = DiffusionConfig(steps=4, corrections=1, guidance=guidance or "gaussian", max_windows=max_windows)
        return sample_posterior(model, settings, (5, *WINDOW_SHAPE), observe, y if guidance else None,
                                std if guidance else None, torch.Generator().manual_seed(7))

    whole = draw(0)
    assert whole.abs().max() > 0.1
    torch.testing.assert_close(draw(2), whole, rtol=1e-5, atol=1e-5)  # passes of 2, 2 and 1 windows
