"""Autoregressive rollout with hand-made step functions whose exact continuation is known."""

import pytest
import torch

from megageo.errors import MegageoError
from megageo.model.rollout import leads_for_hours, rollout


def fibonacci_step(window: torch.Tensor) -> torch.Tensor:
    """T_in = 2 → T_out = 3: the next three Fibonacci terms after the window's two."""
    a, b = window[:, 0:1], window[:, 1:2]
    return torch.cat([a + b, a + 2 * b, 2 * a + 3 * b], dim=1)


def linear_extrapolation_step(window: torch.Tensor) -> torch.Tensor:
    """T_out = 2: continue the trend of the window's last two frames."""
    last, trend = window[:, -1:], window[:, -1:] - window[:, -2:-1]
    return torch.cat([last + trend, last + 2 * trend], dim=1)


def test_rollout_slides_the_window_over_its_own_predictions():
    # Three calls give 9 frames from windows (1, 1), (3, 5), (13, 21); only the first 7 are kept.
    window = torch.ones(1, 2, 1, 1, 1, dtype=torch.float64)
    forecast = rollout(fibonacci_step, window, n_leads=7)
    assert forecast.flatten().tolist() == [2, 3, 5, 8, 13, 21, 34]


def test_linear_extrapolation_rolls_out_to_a_straight_line_per_grid_point():
    # Whole numbers keep every sum exact, so the comparison can be exact too.
    generator = torch.Generator().manual_seed(0)
    start = torch.randint(-50, 50, (2, 1, 1, 3, 4), generator=generator).to(torch.float64)
    trend = torch.randint(-5, 5, (2, 1, 1, 3, 4), generator=generator).to(torch.float64)
    window = start + trend * torch.arange(4, dtype=torch.float64).reshape(1, 4, 1, 1, 1)
    forecast = rollout(linear_extrapolation_step, window, n_leads=5)
    expected = start + trend * torch.arange(4, 9, dtype=torch.float64).reshape(1, 5, 1, 1, 1)
    assert torch.equal(forecast, expected)


def test_rollout_calls_the_model_only_as_often_as_needed():
    calls = []

    def counting_step(window: torch.Tensor) -> torch.Tensor:
        calls.append(window.shape)
        return linear_extrapolation_step(window)

    rollout(counting_step, torch.zeros(1, 3, 1, 2, 2), n_leads=4)
    assert calls == [(1, 3, 1, 2, 2)] * 2


def test_rollout_rejects_a_step_function_that_changes_the_grid():
    with pytest.raises(MegageoError, match="step_fn"):
        rollout(lambda window: window[..., :1], torch.zeros(1, 2, 1, 2, 2), n_leads=1)


def test_rollout_needs_at_least_one_lead():
    with pytest.raises(MegageoError):
        rollout(linear_extrapolation_step, torch.zeros(1, 2, 1, 2, 2), n_leads=0)


def test_five_days_of_six_hourly_leads():
    assert leads_for_hours(120) == 20
    with pytest.raises(MegageoError):
        leads_for_hours(10)
