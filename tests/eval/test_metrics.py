"""Metric definitions against values computed by hand on 3-latitude grids."""

import math

import numpy as np
import pytest
import torch

from megageo.data.grid import latitude_weights, merge_pole_rows
from megageo.errors import MegageoError
from megageo.eval.metrics import (
    METRIC_NAMES,
    acc,
    acc_batch_mean,
    lat_weighted_rmse,
    metrics_per_lead,
    rmse,
)

SQRT2 = math.sqrt(2)
# lat = [90, 0, -90], Δφ = 90°: cell areas 1 − sin 45°, 2 sin 45°, 1 − sin 45° sum to 2, so the
# mean-1 weights are 3/2 of the areas.
POLE_WEIGHT = 1.5 * (1 - SQRT2 / 2)
EQUATOR_WEIGHT = 1.5 * SQRT2


def test_weights_of_three_latitudes_are_the_cell_areas_scaled_to_mean_one():
    np.testing.assert_allclose(latitude_weights([90, 0, -90]), [POLE_WEIGHT, EQUATOR_WEIGHT, POLE_WEIGHT],
                               rtol=1e-14)


def test_each_pole_row_becomes_its_zonal_mean_and_every_other_row_stays():
    """A pole is one point repeated along its row: 4 guesses 1, 2, 3, 6 of it become 3 each."""
    fields = np.array([[[1.0, 2.0, 3.0, 6.0], [5.0, 6.0, 7.0, 8.0], [-1.0, 1.0, -1.0, 1.0]]] * 2)
    merged = merge_pole_rows(fields.copy(), [90.0, 0.0, -90.0])
    np.testing.assert_array_equal(merged[:, 0], 3.0)
    np.testing.assert_array_equal(merged[:, 1], fields[:, 1])
    np.testing.assert_array_equal(merged[:, 2], 0.0)
    no_poles = merge_pole_rows(fields.copy(), [80.0, 0.0, -80.0])  # a grid without poles is left as it is
    np.testing.assert_array_equal(no_poles, fields)


def test_weights_follow_the_latitude_values_not_their_order():
    # Uneven rows 60, 0, −30: edges at 90, 30, −15, −90 give areas 0.5, 0.5 + sin 15°, 1 − sin 15°.
    sin15 = math.sin(math.radians(15))
    north_to_south = [0.75, 1.5 * (0.5 + sin15), 1.5 * (1 - sin15)]
    np.testing.assert_allclose(latitude_weights([60, 0, -30]), north_to_south, rtol=1e-14)
    np.testing.assert_allclose(latitude_weights([-30, 0, 60]), north_to_south[::-1], rtol=1e-14)
    np.testing.assert_allclose(latitude_weights([0, -30, 60]), [north_to_south[1], north_to_south[2], 0.75],
                               rtol=1e-14)


def test_ncep_pole_rows_get_the_half_cell_cap():
    lat = np.linspace(90, -90, 73)
    weights = latitude_weights(lat)
    half = math.radians(1.25)
    assert weights.mean() == pytest.approx(1, rel=1e-14)
    assert weights[0] / weights[36] == pytest.approx((1 - math.cos(half)) / (2 * math.sin(half)), rel=1e-12)
    np.testing.assert_allclose(weights, weights[::-1], rtol=1e-12)


@pytest.mark.parametrize("lat", [[0, 0, 10], [95, 0, -90], [[0, 1]]])
def test_weights_reject_repeated_out_of_range_or_non_vector_latitudes(lat):
    with pytest.raises(MegageoError):
        latitude_weights(lat)


def test_rmse_is_eq_13_pooled_over_every_point_of_the_batch():
    truth = np.array([[[3.0, 4.0]], [[0.0, 0.0]]])
    assert rmse(np.zeros_like(truth), truth) == pytest.approx(2.5, rel=1e-15)


def test_rmse_accepts_torch_tensors():
    assert rmse(torch.tensor([1.0, 1.0]), torch.tensor([4.0, 5.0])) == pytest.approx(math.sqrt(12.5), rel=1e-7)


def _row_error(row: int, lat: list[float]) -> np.ndarray:
    """Error field of 2 m on one latitude row of a 3 × 2 grid, zero elsewhere."""
    field = np.zeros((len(lat), 2))
    field[row] = 2.0
    return field


@pytest.mark.parametrize("lat", [[90, 0, -90], [-90, 0, 90]])
def test_lat_weighted_rmse_counts_equator_errors_more_than_pole_errors(lat):
    # Weighted MSE = (2 points · w · 2²) / 6 points.
    equator = _row_error(1, lat)
    pole = _row_error(0, lat)
    assert lat_weighted_rmse(equator, 0 * equator, lat) == pytest.approx(math.sqrt(4 * EQUATOR_WEIGHT / 3), rel=1e-14)
    assert lat_weighted_rmse(pole, 0 * pole, lat) == pytest.approx(math.sqrt(4 * POLE_WEIGHT / 3), rel=1e-14)


def test_lat_weighted_rmse_is_the_same_for_a_grid_and_its_latitude_flip():
    field = np.arange(6.0).reshape(3, 2) ** 2
    assert lat_weighted_rmse(field, 0 * field, [90, 0, -90]) == pytest.approx(
        lat_weighted_rmse(field[::-1], 0 * field, [-90, 0, 90]), rel=1e-14)


def test_lat_weighted_rmse_takes_the_root_per_sample_or_after_averaging():
    errors = np.stack([np.full((3, 2), 3.0), np.full((3, 2), 4.0)])
    lat = [90, 0, -90]
    assert lat_weighted_rmse(errors, 0 * errors, lat, per_sample=True) == pytest.approx(3.5, rel=1e-14)
    assert lat_weighted_rmse(errors, 0 * errors, lat, per_sample=False) == pytest.approx(math.sqrt(12.5), rel=1e-14)


def test_lat_weighted_rmse_rejects_a_grid_that_does_not_match_the_latitudes():
    with pytest.raises(MegageoError):
        lat_weighted_rmse(np.zeros((4, 2)), np.zeros((4, 2)), [90, 0, -90])


def test_acc_weights_the_anomaly_products_by_cell_area():
    # Forecast anomaly [1, 0, 0], true anomaly [1, 1, 0] (one column):
    # ACC = w_p / sqrt(w_p (w_p + w_e)) = sqrt((2 − √2) / (2 + √2)) = √2 − 1; unweighted it would be 1/√2.
    climatology = np.full((3, 1), 5000.0)
    forecast = climatology + [[1.0], [0.0], [0.0]]
    truth = climatology + [[1.0], [1.0], [0.0]]
    assert acc(forecast, truth, climatology, [90, 0, -90]) == pytest.approx(SQRT2 - 1, rel=1e-12)


def test_acc_averages_per_sample_correlations():
    # Sample 1 is perfect (+1), sample 2 has the opposite anomaly at half the amplitude (−1): mean 0,
    # whereas one correlation pooled over both samples would be (4 − 1) / 5 = 0.6.
    truth = np.stack([np.full((3, 2), 2.0), np.full((3, 2), 1.0)])
    forecast = truth * np.array([1.0, -1.0])[:, None, None]
    assert acc(forecast, truth, 0.0, [90, 0, -90]) == pytest.approx(0.0, abs=1e-15)


def test_acc_of_the_climatology_itself_is_zero():
    truth = np.arange(6.0).reshape(3, 2)
    assert acc(np.ones((3, 2)), truth, np.ones((3, 2)), [90, 0, -90]) == 0.0


def test_paper_acc_uses_the_batch_mean_truth_as_climatology():
    # Batch mean ȳ = 2: true anomalies [−1, 1], forecast anomalies [0, 2] → 2 / sqrt(4 · 2) = 1/√2.
    truth = np.array([[[1.0]], [[3.0]]])
    forecast = np.array([[[2.0]], [[4.0]]])
    assert acc_batch_mean(forecast, truth) == pytest.approx(1 / SQRT2, rel=1e-14)
    assert acc_batch_mean(np.full_like(truth, 2.0), truth) == 0.0


def test_metrics_per_lead_scores_each_lead_separately():
    rng = np.random.default_rng(0)
    truth = 5500 + 100 * rng.standard_normal((2, 2, 1, 3, 2))
    forecast = truth.copy()
    forecast[:, 1] += 5.0
    table = metrics_per_lead(forecast, truth, truth.mean(axis=0), [90, 0, -90])
    assert set(table) == set(METRIC_NAMES)
    assert table["rmse"] == [0.0, pytest.approx(5.0, rel=1e-12)]
    assert table["lat_weighted_rmse"] == [0.0, pytest.approx(5.0, rel=1e-12)]
    assert table["acc"][0] == pytest.approx(1.0, rel=1e-12)
    assert table["acc_batch_mean"][0] == pytest.approx(1.0, rel=1e-12)


def test_metrics_per_lead_rejects_mismatched_shapes():
    with pytest.raises(MegageoError):
        metrics_per_lead(np.zeros((2, 1, 1, 3, 2)), np.zeros((2, 2, 1, 3, 2)), 0.0, [90, 0, -90])


def test_a_spectral_truncation_keeps_the_degrees_below_it_and_removes_the_rest():
    """On the 2.5° grid, fields written with closed-form spherical harmonics: 3 + 2 sin φ + cos φ cos λ (degrees 0
    and 1) and the sectoral cos³⁶φ cos 36λ (degree 36) survive a truncation at 37 whole; cos⁴⁰φ cos 40λ (degree 40)
    goes, and with it any difference between a pole row's values."""
    from megageo.data.grid import check_spectral_truncation, truncate_spherical_harmonics

    lat, lon = np.radians(np.linspace(90, -90, 73))[:, None], np.radians(np.arange(144) * 2.5)[None]
    kept = 3 + 2 * np.sin(lat) + np.cos(lat) * np.cos(lon) + 50 * np.cos(lat) ** 36 * np.cos(36 * lon)
    removed = 50 * np.cos(lat) ** 40 * np.cos(40 * lon)
    fields = np.stack([kept, kept + removed])
    truncated = truncate_spherical_harmonics(fields, 37)
    np.testing.assert_allclose(truncated[0], kept, rtol=0, atol=1e-9)
    np.testing.assert_allclose(truncated[1], kept, rtol=0, atol=1e-9)
    assert np.abs(removed).max() > 10
    check_spectral_truncation(37, np.linspace(90, -90, 73))
    with pytest.raises(MegageoError, match="needs a grid from pole to pole with at least that many latitudes; this "
                                           "one has 72 from 88.75 to -88.75"):
        check_spectral_truncation(37, np.linspace(88.75, -88.75, 72))
    with pytest.raises(MegageoError, match="this one has 73"):
        check_spectral_truncation(80, np.linspace(90, -90, 73))
