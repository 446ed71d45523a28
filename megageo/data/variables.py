"""The atmospheric variables a store can hold: NCEP R1's names (its files are `NAME.YYYY.nc`), the CF standard names
and conventional names that find them in other sources, and the units the store keeps them in.

Geopotential height has rules of its own (geopotential in m² s⁻² is divided by g0; a file without units is told
apart by magnitude level by level) and lives in `megageo.data.ncep`; the others are found and converted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from megageo.errors import MegageoError


@dataclass(frozen=True)
class Variable:
    name: str
    """NCEP R1's variable and file-name stem."""
    long_name: str
    units: str
    """The units the store keeps (CF spelling)."""
    standard_names: tuple[str, ...]
    names: frozenset[str]
    """Conventional names (lower-case), used only where a variable's metadata says nothing."""
    unit_spellings: dict[str, tuple[float, float]]
    """Squeezed lower-case units (no spaces, `**`, `^`) → (scale, offset) into `units`: store = scale·x + offset."""
    plausible: tuple[float, float]
    """Where a field's mean lies in `units`: a file without units is read in them only if its mean falls here."""


SPEED = {"ms-1": (1.0, 0.0), "m/s": (1.0, 0.0), "meter/second": (1.0, 0.0), "meters/second": (1.0, 0.0),
         "metre/second": (1.0, 0.0), "metres/second": (1.0, 0.0), "mps": (1.0, 0.0), "knots": (0.514444, 0.0)}
TEMPERATURE = {"k": (1.0, 0.0), "degk": (1.0, 0.0), "kelvin": (1.0, 0.0), "degreesk": (1.0, 0.0),
               "degrees_kelvin": (1.0, 0.0), "degc": (1.0, 273.15), "celsius": (1.0, 273.15),
               "degreesc": (1.0, 273.15), "degrees_celsius": (1.0, 273.15)}

VARIABLES: dict[str, Variable] = {
    "hgt": Variable("hgt", "geopotential height", "m", ("geopotential_height", "geopotential"),
                    frozenset({"hgt", "zg", "gh", "geopotential_height", "z"}), {}, (-1000.0, 60000.0)),
    "uwnd": Variable("uwnd", "eastward wind", "m s-1", ("eastward_wind",), frozenset({"uwnd", "u", "ua"}), SPEED,
                     (-60.0, 60.0)),
    "vwnd": Variable("vwnd", "northward wind", "m s-1", ("northward_wind",), frozenset({"vwnd", "v", "va"}), SPEED,
                     (-60.0, 60.0)),
    "air": Variable("air", "air temperature", "K", ("air_temperature",), frozenset({"air", "t", "ta"}), TEMPERATURE,
                    (150.0, 350.0)),
}


def variable(name: str) -> Variable:
    """The registered variable `name`, or one line listing those there are."""
    if name not in VARIABLES:
        raise MegageoError(f"unknown variable '{name}' (known: {', '.join(VARIABLES)})")
    return VARIABLES[name]


def channel_name(name: str, level: float) -> str:
    """How reports and forecasts call one channel: NCEP's habit of variable and level, e.g. `hgt500`."""
    return f"{name}{level:g}"
