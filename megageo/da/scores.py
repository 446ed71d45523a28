"""Scores of an analysis ensemble against the truth, latitude-weighted over the grid (cell areas, WeatherBench 2).

- RMSE of the ensemble mean; spread = √(weighted mean of the members' variance, N − 1 in the denominator).
- Spread-skill ratio √((N+1)/N) · spread / RMSE: 1 for a reliable ensemble (the factor corrects for the mean of
  N members being itself uncertain, Fortin et al. 2014).
- Fair CRPS (Ferro 2014): mean |x_i − y| − Σ_ij |x_i − x_j| / (2 N (N − 1)), unbiased for the CRPS of the
  distribution the members are drawn from; the Gaussian CRPS in closed form for methods that give a mean and a
  standard deviation (optimal interpolation, climatology).
- Rank histogram: the truth's rank among the members at every grid point, N + 1 bins.
- Zonal mean square error: per latitude row, the one place the area weighting hides errors (a pole row weighs
  0.4 % of a mean row), so a fault along one row shows there and nowhere else.
- Texture, which no score above sees in one number: the rms 6-hour change of a window and the rms difference
  between zonal neighbours, to compare a sampled state's motion and roughness with the truth's.
"""

from __future__ import annotations

import math

import numpy as np

from megageo.data.grid import latitude_weights


def _weighted_mean(field: np.ndarray, lat: np.ndarray) -> float:
    """Mean over [..., H, W] with cell-area weights per row."""
    weights = latitude_weights(lat)[:, None]
    return float((field * weights).mean())


def ensemble_rmse(members: np.ndarray, truth: np.ndarray, lat: np.ndarray) -> float:
    """members [N, ..., H, W], truth [..., H, W]."""
    return math.sqrt(_weighted_mean((members.mean(0) - truth) ** 2, lat))


def zonal_mean_square_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[..., H, W] → [H]: the squared error averaged over longitudes (and any leading axes). Its cell-area
    weighted mean over rows is `ensemble_rmse`'s square."""
    error = (estimate - truth) ** 2
    return error.reshape(-1, *error.shape[-2:]).mean(axis=(0, 2))


def ensemble_spread(members: np.ndarray, lat: np.ndarray) -> float:
    return math.sqrt(_weighted_mean(members.var(0, ddof=1), lat))


def spread_skill_ratio(spread: float, rmse: float, members: int) -> float:
    return math.sqrt((members + 1) / members) * spread / rmse


def fair_crps(members: np.ndarray, truth: np.ndarray, lat: np.ndarray) -> float:
    n = len(members)
    skill = np.abs(members - truth).mean(0)
    ordered = np.sort(members, axis=0)
    ranks = (2 * np.arange(1, n + 1) - n - 1).reshape((n,) + (1,) * (members.ndim - 1))
    pair_sum = 2 * (ranks * ordered).sum(0)  # Σ_ij |x_i − x_j|
    return _weighted_mean(skill - pair_sum / (2 * n * (n - 1)), lat)


def gaussian_crps(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, lat: np.ndarray) -> float:
    from scipy.stats import norm

    z = (truth - mean) / std
    crps = std * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    return _weighted_mean(crps, lat)


def gaussian_spread(std: np.ndarray, lat: np.ndarray) -> float:
    return math.sqrt(_weighted_mean(std**2, lat))


def rank_histogram(members: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Counts [N + 1] of the truth's rank among the members over every grid point (ties are broken evenly)."""
    below = (members < truth).sum(0)
    ties = (members == truth).sum(0)
    ranks = below + np.floor(ties / 2).astype(int)
    return np.bincount(ranks.ravel(), minlength=len(members) + 1)


def rms_tendency(windows: np.ndarray, lat: np.ndarray) -> float:
    """windows [..., L, H, W] of consecutive frames → the rms change from one frame to the next. Frames drawn
    independently of each other show √2 × their spread here; the atmosphere's 6-hour change is far below it."""
    return math.sqrt(_weighted_mean(np.diff(windows, axis=-3) ** 2, lat))


def rms_zonal_difference(fields: np.ndarray, lat: np.ndarray) -> float:
    """fields [..., H, W] → the rms difference between east–west neighbours, across the date line too: the
    roughness at the grid's own scale, which a smooth field like Z500 holds far below its spread."""
    return math.sqrt(_weighted_mean((np.roll(fields, -1, axis=-1) - fields) ** 2, lat))
