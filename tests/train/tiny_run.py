"""A tiny store and config for training tests: 1 level on an 8 x 16 grid, hidden 32, 2 GLA layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRAMES = 160
GRID = (8, 16)
MIXERS = {
    "transformer": "{type: transformer, num_heads: 4, head_dim: 8}",
    "gla": "{type: gla, num_heads: 4, use_short_conv: true}",
    "deltanet": "{type: deltanet, num_heads: 4, head_dim: 8}",
    "gated_deltanet": "{type: gated_deltanet, num_heads: 4, head_dim: 8}",
    "kda": "{type: kda, num_heads: 4, head_dim: 8}",
    "mamba2": "{type: mamba2, num_heads: 4, head_dim: 16, state_size: 8, n_groups: 2}",
}
"""Each mixer at tiny size, as `model.mixer` override values."""


TINY_FIELDS = {"hgt": (5500.0, 30.0, "m", "4xDaily Geopotential height"), "uwnd": (10.0, 1.0, "m/s", "4xDaily U-wind")}
"""NCEP name -> (mean, random-walk step, units, PSL's long_name)."""


def write_netcdf(path: Path, seed: int = 0, variable: str = "hgt") -> Path:
    """A smooth random walk of `variable` in NCEP R1's file layout (6-hourly), enough for the real `build_store`."""
    import netCDF4

    mean, step, units, long_name = TINY_FIELDS[variable]
    rng = np.random.default_rng(seed)
    field = mean + np.cumsum(rng.normal(0.0, step, size=(FRAMES, 1, *GRID)), axis=0)
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        for name, size in (("time", None), ("level", 1), ("lat", GRID[0]), ("lon", GRID[1])):
            ds.createDimension(name, size)
        coords = {
            "time": ("f8", {"units": "hours since 1800-01-01 00:00:0.0", "standard_name": "time", "axis": "T"}),
            "level": ("f4", {"units": "millibar", "axis": "Z"}),
            "lat": ("f4", {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}),
            "lon": ("f4", {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}),
        }
        for name, (dtype, attrs) in coords.items():
            ds.createVariable(name, dtype, (name,)).setncatts(attrs)
        ds["time"][:] = 1_569_072.0 + 6.0 * np.arange(FRAMES)  # 1979-01-01 onwards
        ds["level"][:] = [500.0]
        ds["lat"][:] = np.linspace(80.0, -80.0, GRID[0])
        ds["lon"][:] = np.arange(GRID[1]) * 360.0 / GRID[1]
        var = ds.createVariable(variable, "f4", ("time", "level", "lat", "lon"))
        var.setncatts({"units": units, "long_name": long_name})
        var[:] = field.astype(np.float32)
    return path


def build_tiny_store(directory: Path, variables: tuple[str, ...] = ("hgt",)) -> Path:
    from megageo.data.build import build_store

    files = [write_netcdf(directory / f"{name}.1979.nc", seed, name) for seed, name in enumerate(variables)]
    return build_store(files, directory / "store.h5", levels=(500,), variables=variables)


def tiny_overrides(store: Path, out_dir: Path, **settings) -> list[str]:
    """`key=value` overrides of the embedded tiny GLA config; `settings` use `__` for dots."""
    base = {
        "data.store": str(store), "data.t_in": 8, "data.t_out": 2,
        "model.hidden_size": 32, "model.num_layers": 2, "model.mixer.num_heads": 4,
        "train.out_dir": str(out_dir), "train.steps": 5, "train.global_batch_size": 4,
        "train.micro_batch_size": 2, "train.lr": 1e-3, "train.warmup_steps": 2, "train.eval_every": 0,
        "train.save_every": 0, "train.log_every": 1, "train.precision": "fp32",
    }
    base.update({key.replace("__", "."): value for key, value in settings.items()})
    return [f"{key}={value}" for key, value in base.items()]


def run_training(overrides: list[str], resume: bool = False, stop_at: int | None = None) -> list[float]:
    """`megageo.train.loop.train` on the config those overrides give (what each rank runs in the tests)."""
    from megageo.config import load_config
    from megageo.train.loop import train

    return train(load_config(None, overrides), resume=resume, stop_at=stop_at)
