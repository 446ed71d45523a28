"""`diffusion.max_windows` bounds the windows the denoiser sees in one pass (a 340M prior's activations for a
16-member ensemble do not fit one GPU at once). A window's guided score involves only its own state and its own
observations, so a chunked draw is the unchunked one."""

from __future__ import annotations

import pytest
import torch
from tiny_denoiser import WINDOW_SHAPE, stations, tiny_denoiser


@pytest.mark.parametrize("guidance, per_window_y, random_shift",
                         [("gaussian", False, False), ("gaussian", True, False), (None, False, False),
                          ("gaussian", True, True)])
def test_chunks_of_windows_draw_the_same_ensemble(guidance: str | None, per_window_y: bool, random_shift: bool) -> None:
    from megageo.config import DiffusionConfig
    from megageo.da.observations import ObservationOperator
    from megageo.da.posterior import sample_posterior

    model = tiny_denoiser()
    flat_index, y, std = stations()
    if per_window_y:  # the twin's batched cycles: each window has its own observations
        y = y + torch.arange(5.0)[:, None] / 10
    observe = ObservationOperator(flat_index) if guidance else None

    def draw(max_windows: int) -> torch.Tensor:
        settings = DiffusionConfig(steps=4, corrections=1, guidance=guidance or "gaussian", max_windows=max_windows,
                                   augment=["zonal_shift"], random_shift=random_shift)
        return sample_posterior(model, settings, (5, *WINDOW_SHAPE), observe, y if guidance else None,
                                std if guidance else None, torch.Generator().manual_seed(7))

    whole = draw(0)
    assert whole.abs().max() > 0.1
    torch.testing.assert_close(draw(2), whole, rtol=1e-5, atol=1e-5)  # passes of 2, 2 and 1 windows


def test_a_randomly_shifted_denoiser_rolls_the_state_and_its_output_back() -> None:
    """With ε̂(x) = w·x for weights w that vary along longitude, the call at shift s gives x·roll(w, −s): the state
    met the weights s columns further on. An equivariant ε̂ (the same weight everywhere) is unchanged by any shift."""
    from megageo.da.posterior import RandomlyShifted

    weights = torch.arange(1.0, 7.0)
    x = torch.randn(2, 3, 1, 4, 6, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.5, 0.5])
    shifted = RandomlyShifted(lambda state, _: state * weights, torch.Generator().manual_seed(3))
    uniform = RandomlyShifted(lambda state, _: state * 2, torch.Generator().manual_seed(3))
    shifts = []
    for _ in range(3):
        shifted.draw(6)
        shifts.append(shifted.shift)
        torch.testing.assert_close(shifted(x, t), x * weights.roll(-shifted.shift), rtol=0, atol=0)
        uniform.shift = shifted.shift
        torch.testing.assert_close(uniform(x, t), 2 * x, rtol=0, atol=0)
    assert len(set(shifts)) > 1  # a new shift at every draw
