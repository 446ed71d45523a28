"""Distance on the sphere and the Gaspari–Cohn taper: the localisation OI and the LETKF share."""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0


def gaspari_cohn(distance: np.ndarray, half_width: float) -> np.ndarray:
    """Gaspari & Cohn (1999) eq. 4.10: a compactly supported correlation, 1 at 0 and 0 beyond 2 · half_width."""
    r = np.abs(distance) / half_width
    taper = np.zeros_like(r)
    near, far = r <= 1, (r > 1) & (r < 2)
    x = r[near]
    taper[near] = -0.25 * x**5 + 0.5 * x**4 + 0.625 * x**3 - 5 / 3 * x**2 + 1
    x = r[far]
    taper[far] = x**5 / 12 - 0.5 * x**4 + 0.625 * x**3 + 5 / 3 * x**2 - 5 * x + 4 - 2 / (3 * x)
    return taper


def great_circle_km(lat_a: np.ndarray, lon_a: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray) -> np.ndarray:
    """Distances [len(a), len(b)] by the haversine formula."""
    pa, pb = np.radians(lat_a)[:, None], np.radians(lat_b)[None]
    dlon = np.radians(lon_b)[None] - np.radians(lon_a)[:, None]
    h = np.sin((pb - pa) / 2) ** 2 + np.cos(pa) * np.cos(pb) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
