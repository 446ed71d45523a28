"""Forecast-skill metrics on latitude/longitude grids, in physical units (metres of Z500).

Every function reduces over the trailing ``(..., H, W)`` grid dimensions and averages the per-field
scores over all leading dimensions (samples, channels). Two families live side by side:

* the seed paper's definitions (eq. 13 RMSE over all points, ACC against the per-batch mean field),
  kept so that our numbers can be compared with the paper's tables;
* the WeatherBench 2 definitions (cell-area latitude weights, ACC against a day-of-year climatology),
  which are the meteorologically meaningful ones: on a regular lat/lon grid an unweighted mean
  counts the 144 pole points of each pole row as 144 independent places.

Inputs may be numpy arrays or CPU torch tensors; all arithmetic is done in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from megageo.data.grid import latitude_weights
from megageo.errors import MegageoError

METRIC_NAMES = ("rmse", "lat_weighted_rmse", "acc", "acc_batch_mean")


def _as_float64(array: Any) -> np.ndarray:
    """numpy view of an array or torch tensor (detached, on CPU) in float64."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def rmse(pred: Any, truth: Any) -> float:
    """The paper's eq. 13: sqrt of the mean squared error over every point of every sample, unweighted."""
    error = _as_float64(pred) - _as_float64(truth)
    return float(np.sqrt(np.mean(error**2)))


def _weighted_grid_mean(field: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Area-weighted mean over the trailing (H, W) dimensions; leading dimensions are kept."""
    return np.mean(field * weights[:, None], axis=(-2, -1))


def _grid_weights(lat: Any, field: np.ndarray) -> np.ndarray:
    weights = latitude_weights(lat)
    if field.ndim < 2 or field.shape[-2] != weights.size:
        raise MegageoError(f"expected fields shaped (..., {weights.size}, W) for {weights.size} latitudes, "
                           f"got {field.shape}")
    return weights


def lat_weighted_rmse(pred: Any, truth: Any, lat: Any, per_sample: bool = True) -> float:
    """Latitude-weighted RMSE (WeatherBench 2).

    ``per_sample=True`` takes the square root of each field's weighted MSE and then averages over
    the leading dimensions: the WeatherBench 2 paper's definition (their ``RMSESqrtBeforeTimeAvg``),
    and what we report. ``per_sample=False`` averages the weighted MSE first and takes one square
    root, which is never smaller and is what a per-batch loss curve would show.
    """
    error = _as_float64(pred) - _as_float64(truth)
    weighted_mse = _weighted_grid_mean(error**2, _grid_weights(lat, error))
    if per_sample:
        return float(np.mean(np.sqrt(weighted_mse)))
    return float(np.sqrt(np.mean(weighted_mse)))


def _correlation(forecast_anomaly: np.ndarray, truth_anomaly: np.ndarray, mean: Any) -> np.ndarray:
    """Uncentred correlation sum(a·b) / sqrt(sum(a²)·sum(b²)) with ``mean`` as the (weighted) reduction.

    A forecast with no anomaly at all (the climatology forecast itself) has no defined correlation;
    it carries no anomaly signal, so it scores 0 (the paper's "ACC ≈ 0" for climatology) rather than NaN.
    """
    covariance = mean(forecast_anomaly * truth_anomaly)
    norm = np.sqrt(mean(forecast_anomaly**2) * mean(truth_anomaly**2))
    return np.divide(covariance, norm, out=np.zeros_like(norm), where=norm > 0)


def acc(pred: Any, truth: Any, climatology: Any, lat: Any) -> float:
    """Anomaly correlation coefficient against a climatology (WeatherBench 2).

    Anomalies are ``pred − climatology`` and ``truth − climatology`` (``climatology`` broadcasts
    against them, e.g. the day-of-year/hour-of-day mean for each valid time); the area-weighted
    correlation is computed per field and averaged over the leading dimensions.
    """
    truth = _as_float64(truth)
    clim = _as_float64(climatology)
    weights = _grid_weights(lat, truth)
    per_field = _correlation(_as_float64(pred) - clim, truth - clim,
                             lambda field: _weighted_grid_mean(field, weights))
    return float(np.mean(per_field))


def acc_batch_mean(pred: Any, truth: Any) -> float:
    """The seed paper's ACC: anomalies against the batch-mean truth field, pooled over the batch, unweighted.

    The batch is the leading axis; ``ȳ = truth.mean(axis=0)`` is the paper's "climatology", and one
    correlation is taken over every point of every sample. It rewards reproducing the spread within the
    batch rather than departures from the seasonal cycle, so it is reported only for comparison.
    """
    truth = _as_float64(truth)
    batch_mean = truth.mean(axis=0)
    return float(_correlation(_as_float64(pred) - batch_mean, truth - batch_mean, np.mean))


def metrics_per_lead(pred: Any, truth: Any, climatology: Any, lat: Any) -> dict[str, list[float]]:
    """All metrics for each lead time of forecasts shaped ``[N, T_out, C, H, W]`` in metres.

    ``climatology`` holds the climatological field for each sample's valid times (same shape, or
    broadcastable). Returns ``{metric name: [value at lead 1, ..., lead T_out]}`` for ``METRIC_NAMES``.
    """
    pred, truth = _as_float64(pred), _as_float64(truth)
    clim = np.broadcast_to(_as_float64(climatology), truth.shape)
    if pred.shape != truth.shape or truth.ndim != 5:
        raise MegageoError(f"forecast {pred.shape} and truth {truth.shape} must both be [N, T_out, C, H, W]")
    leads = range(truth.shape[1])
    return {
        "rmse": [rmse(pred[:, t], truth[:, t]) for t in leads],
        "lat_weighted_rmse": [lat_weighted_rmse(pred[:, t], truth[:, t], lat) for t in leads],
        "acc": [acc(pred[:, t], truth[:, t], clim[:, t], lat) for t in leads],
        "acc_batch_mean": [acc_batch_mean(pred[:, t], truth[:, t]) for t in leads],
    }
