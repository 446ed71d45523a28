"""Persistence, climatology and the paper's batch-mean baseline, shaped like model forecasts."""

import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.eval.baselines import (
    BATCH_MEAN,
    CLIMATOLOGY,
    PERSISTENCE,
    baseline_forecasts,
    batch_mean_forecast,
    persistence,
)
from megageo.eval.climatology import Climatology
from megageo.eval.times import valid_times


def test_persistence_repeats_the_last_input_frame():
    inputs = np.arange(2 * 3 * 1 * 2 * 2, dtype=float).reshape(2, 3, 1, 2, 2)
    forecast = persistence(inputs, t_out=4)
    assert forecast.shape == (2, 4, 1, 2, 2)
    for lead in range(4):
        np.testing.assert_array_equal(forecast[:, lead], inputs[:, 2])


def test_persistence_rejects_inputs_without_a_time_axis():
    with pytest.raises(MegageoError):
        persistence(np.zeros((2, 1, 2, 2)), t_out=1)


def test_batch_mean_predicts_the_mean_truth_for_every_sample():
    truth = np.array([1.0, 3.0, 8.0]).reshape(3, 1, 1, 1, 1) * np.ones((3, 2, 1, 2, 2))
    np.testing.assert_array_equal(batch_mean_forecast(truth), np.full((3, 2, 1, 2, 2), 4.0))


def test_baselines_share_the_model_forecast_shape_and_read_the_climatology_at_valid_times():
    # A climatology whose value is the hour of day, so each lead's field shows which time it was read at.
    train_times = np.datetime64("2001-01-01T00", "h") + np.arange(4 * 365) * np.timedelta64(6, "h")
    train_frames = (train_times.astype(np.int64) % 24).astype(float).reshape(-1, 1, 1, 1) * np.ones((1, 1, 3, 2))
    climatology = Climatology.fit(train_frames, train_times)
    init = np.array(["2005-03-01T00", "2005-03-01T12"], dtype="datetime64[h]")
    inputs = np.zeros((2, 8, 1, 3, 2))
    truth = np.ones((2, 4, 1, 3, 2))
    forecasts = baseline_forecasts(inputs, truth, climatology, valid_times(init, [6, 12, 18, 24]))
    assert list(forecasts) == [PERSISTENCE, CLIMATOLOGY, BATCH_MEAN]
    assert all(forecast.shape == truth.shape for forecast in forecasts.values())
    np.testing.assert_array_equal(forecasts[CLIMATOLOGY][:, :, 0, 0, 0], [[6, 12, 18, 0], [18, 0, 6, 12]])
