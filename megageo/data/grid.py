"""The reanalysis grid's geometry, shared by training objectives and evaluation scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from megageo.errors import MegageoError


def latitude_weights(lat_deg: Any) -> np.ndarray:
    """Cell-area weights per latitude row, normalised to mean 1 (WeatherBench 2).

    Cell edges lie halfway between neighbouring latitudes and at ±90°, so a pole row gets the
    half-cell cap area and the weight of row i is sin(upper edge) − sin(lower edge). The weights
    depend only on the latitude values: rows are sorted internally and the result is returned
    in the caller's order, which makes north→south grids (NCEP) and south→north grids agree.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0:
        raise MegageoError(f"latitudes must be a non-empty 1-D array, got shape {lat.shape}")
    if np.any(np.abs(lat) > 90):
        raise MegageoError(f"latitudes must lie in [-90, 90] degrees, got {lat.min()}..{lat.max()}")
    order = np.argsort(lat)
    ascending = np.deg2rad(lat[order])
    if np.any(np.diff(ascending) <= 0):
        raise MegageoError("latitudes must be distinct")
    edges = np.concatenate([[-np.pi / 2], (ascending[:-1] + ascending[1:]) / 2, [np.pi / 2]])
    area = np.sin(edges[1:]) - np.sin(edges[:-1])
    weights = np.empty_like(area)
    weights[order] = area / area.mean()
    return weights


def merge_pole_rows(fields: np.ndarray, lat: Any) -> np.ndarray:
    """[..., H, W] → the same with each pole row (latitude ±90°) set to its mean over longitudes, in place.

    A pole is one point that a latitude–longitude grid repeats along its row, so a model's W values there are W
    guesses of one value; their mean is at least as close to it (a store's pole rows are constant to 10⁻⁴ m)."""
    for row in np.flatnonzero(np.abs(np.asarray(lat, dtype=np.float64)) == 90.0):
        fields[..., row, :] = fields[..., row, :].mean(axis=-1, keepdims=True)
    return fields


def check_spectral_truncation(lmax: int, lat: Any) -> None:
    """Refuse, before any sampling, a truncation the grid cannot take: the transform wants an equiangular grid
    from pole to pole and at most one degree per latitude."""
    lat = np.asarray(lat, dtype=np.float64)
    if lmax and (abs(lat[0]) != 90.0 or abs(lat[-1]) != 90.0 or not 0 < lmax <= len(lat)):
        raise MegageoError(f"diffusion.spectral_truncation={lmax} needs a grid from pole to pole with at least that "
                           f"many latitudes; this one has {len(lat)} from {lat[0]:g} to {lat[-1]:g}")


def truncate_spherical_harmonics(fields: np.ndarray, lmax: int) -> np.ndarray:
    """[..., H, W] on an equiangular grid from pole to pole → its projection onto the spherical harmonics of degree
    below `lmax`. A field of that resolution comes back as it was (the embedded shallow-water model's, lmax 37, to
    10⁻⁴ m), so what the projection removes is detail the data cannot hold; each pole row comes back one value."""
    import torch
    from torch_harmonics import InverseRealSHT, RealSHT

    height, width = fields.shape[-2:]
    forward = RealSHT(height, width, lmax=lmax, mmax=lmax, grid="equiangular").double()
    inverse = InverseRealSHT(height, width, lmax=lmax, mmax=lmax, grid="equiangular").double()
    x = torch.from_numpy(np.ascontiguousarray(fields, dtype=np.float64))
    return inverse(forward(x)).numpy().astype(fields.dtype)
