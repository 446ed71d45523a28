"""Ensemble scores against an outside oracle (scoringrules) and hand-computed values; the OI baseline against the
Kalman analysis it must equal without localisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from megageo.da import scores
from megageo.da.localisation import gaspari_cohn, great_circle_km
from megageo.da.twin import OptimalInterpolation

LAT = np.array([45.0, -45.0])  # equal cell areas: the weighted mean is the plain mean


def test_fair_crps_is_scoringrules_fair_estimator() -> None:
    import scoringrules

    rng = np.random.default_rng(0)
    members, truth = rng.normal(size=(7, 2, 3)), rng.normal(size=(2, 3))
    expected = scoringrules.crps_ensemble(truth, np.moveaxis(members, 0, -1), m_axis=-1, estimator="fair").mean()
    assert scores.fair_crps(members, truth, LAT) == pytest.approx(float(expected), rel=1e-12)


def test_scores_of_a_two_member_ensemble_by_hand() -> None:
    members = np.array([[[1.0], [1.0]], [[3.0], [3.0]]])  # members 1 and 3 at both points, truth 0
    truth = np.zeros((2, 1))
    assert scores.ensemble_rmse(members, truth, LAT) == 2.0
    assert scores.ensemble_spread(members, LAT) == math.sqrt(2.0)  # var(1, 3; ddof=1) = 2
    assert scores.spread_skill_ratio(math.sqrt(2.0), 2.0, 2) == pytest.approx(math.sqrt(1.5) * math.sqrt(2) / 2)
    assert scores.fair_crps(members, truth, LAT) == pytest.approx(2.0 - 4.0 / 4)  # mean|x−y| − Σ|xi−xj|/(2·2·1)
    assert scores.rank_histogram(members, truth).tolist() == [2, 0, 0]


def test_an_error_on_the_pole_row_shows_by_latitude_and_hardly_in_the_rmse() -> None:
    """3 latitudes (90° S, 0°, 90° N), 2 longitudes, 10 m off along the south-pole row alone. The cell edges lie at
    ±45°, so a pole row's area is 1 − sin 45° = 0.293 against the equator's 2 sin 45° = 1.414: 0.439 of the mean
    row. The RMSE sees √(0.439 · 100 / 3) = 3.8 m; the profile shows the 10 m whole."""
    lat = np.array([-90.0, 0.0, 90.0])
    truth = np.zeros((3, 2))
    estimate = np.array([[10.0, 10.0], [0.0, 0.0], [0.0, 0.0]])
    assert scores.zonal_mean_square_error(estimate, truth).tolist() == [100.0, 0.0, 0.0]
    pole_weight = 3 * (1 - math.sin(math.pi / 4)) / 2
    assert scores.ensemble_rmse(estimate[None], truth, lat) == pytest.approx(math.sqrt(pole_weight * 100 / 3))
    cycles = np.stack([estimate - 1, estimate + 1])  # leading axes (cycles, seeds) are averaged after squaring
    assert scores.zonal_mean_square_error(cycles, truth).tolist() == [101.0, 1.0, 1.0]


def test_texture_of_a_wave_moving_by_hand() -> None:
    """A zonal wave 1, 0, −1, 0 that moves one point east a frame: every frame-to-frame change is (−1, 1, 1, −1)
    and every neighbour difference one of (−1, −1, 1, 1), across the date line too; rms 1 for both."""
    frames = np.array([np.roll([1.0, 0.0, -1.0, 0.0], shift) for shift in range(3)])[:, None].repeat(2, axis=1)
    assert scores.rms_tendency(frames, LAT) == 1.0
    assert scores.rms_zonal_difference(frames, LAT) == 1.0
    assert scores.rms_tendency(np.stack([frames[0]] * 3), LAT) == 0.0


def test_gaussian_crps_of_a_standard_normal_at_its_mean() -> None:
    value = scores.gaussian_crps(np.zeros((2, 1)), np.ones((2, 1)), np.zeros((2, 1)), LAT)
    assert value == pytest.approx(2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi), rel=1e-12)


def test_gaspari_cohn_at_its_knots() -> None:
    values = gaspari_cohn(np.array([0.0, 1000.0, 2000.0, 2500.0]), 1000.0)
    assert values.tolist() == pytest.approx([1.0, 5 / 24, 0.0, 0.0])


def test_great_circle_distance_quarter_meridian() -> None:
    assert great_circle_km(np.array([0.0]), np.array([0.0]), np.array([90.0]), np.array([123.0]))[0, 0] == \
        pytest.approx(math.pi / 2 * 6371.0)


def test_optimal_interpolation_without_localisation_is_the_kalman_analysis() -> None:
    rng = np.random.default_rng(1)
    lat, lon = np.array([30.0, 0.0]), np.array([0.0, 90.0, 180.0])
    anomalies = rng.normal(size=(50, 2, 3)) @ np.diag([1.0, 2.0, 0.5])
    background, stations, error_std = rng.normal(size=(2, 3)), np.array([1, 4]), 0.3
    oi = OptimalInterpolation(background, anomalies[:, None], stations, lat, lon, error_std, half_width_km=1e9)
    flat = anomalies.reshape(50, -1)
    b = np.cov(flat.T)
    h = np.eye(6)[stations]
    gain = b @ h.T @ np.linalg.inv(h @ b @ h.T + error_std**2 * np.eye(2))
    y = np.array([0.5, -1.0])
    expected = background.ravel() + gain @ (y - h @ background.ravel())
    np.testing.assert_allclose(oi.analyse(y[None]).ravel(), expected, rtol=1e-9)
    np.testing.assert_allclose(oi.std.ravel() ** 2, np.diag((np.eye(6) - gain @ h) @ b), rtol=1e-6)


def test_window_optimal_interpolation_is_the_kalman_analysis_of_the_window_state() -> None:
    """Three frames of a 2 x 3 grid, stations observed in every frame, the middle frame analysed: without
    localisation, the Kalman update of the whole window state (B the windows' sample covariance), restricted to
    that frame."""
    rng = np.random.default_rng(2)
    lat, lon = np.array([30.0, 0.0]), np.array([0.0, 90.0, 180.0])
    windows = rng.normal(size=(80, 3, 2, 3)).cumsum(1)  # frames correlated in time, as a window's are
    background, stations, error_std = rng.normal(size=(2, 3)), np.array([0, 5]), 0.4
    oi = OptimalInterpolation(background, windows, stations, lat, lon, error_std, half_width_km=1e9, target=1)
    b = np.cov(windows.reshape(80, -1).T)
    h = np.eye(18)[[frame * 6 + station for frame in range(3) for station in stations]]
    gain = b @ h.T @ np.linalg.inv(h @ b @ h.T + error_std**2 * np.eye(6))
    y = rng.normal(size=(3, 2))
    state = np.tile(background.ravel(), 3)
    analysis = state + gain @ (y.ravel() - h @ state)
    np.testing.assert_allclose(oi.analyse(y).ravel(), analysis[6:12], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(oi.std.ravel() ** 2, np.diag((np.eye(18) - gain @ h) @ b)[6:12], rtol=1e-6)


def test_the_first_guess_of_a_warm_started_sampler_is_the_kalman_analysis_of_each_whole_window() -> None:
    """`diffusion.start_time` < 1 starts from every frame's window OI: without localisation, the Kalman update of
    the whole window state, for each window of a 5-step observation record."""
    from megageo.da.twin import window_first_guesses

    rng = np.random.default_rng(3)
    lat, lon = np.array([30.0, 0.0]), np.array([0.0, 90.0, 180.0])
    windows = rng.normal(size=(80, 3, 2, 3)).cumsum(1)
    background, stations, error_std = rng.normal(size=(2, 3)), np.array([1, 4]), 0.3
    observations = rng.normal(size=(5, 2))
    guesses = window_first_guesses(background, windows, stations, lat, lon, error_std, 1e9, observations,
                                   np.array([0, 2]))
    b = np.cov(windows.reshape(80, -1).T)
    h = np.eye(18)[[frame * 6 + station for frame in range(3) for station in stations]]
    gain = b @ h.T @ np.linalg.inv(h @ b @ h.T + error_std**2 * np.eye(6))
    state = np.tile(background.ravel(), 3)
    for guess, start in zip(guesses, (0, 2)):
        analysis = state + gain @ (observations[start : start + 3].ravel() - h @ state)
        np.testing.assert_allclose(guess.ravel(), analysis, rtol=1e-9, atol=1e-9)
