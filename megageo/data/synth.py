"""Synthetic reanalysis: a shallow-water model on the sphere, written as NCEP R1 `hgt.YYYY.nc`, `uwnd.YYYY.nc` and
`vwnd.YYYY.nc` files.

Why a model and not noise: forecasters must beat persistence, so the data needs real dynamics (Rossby waves
advected by a westerly). torch-harmonics' ShallowWaterSolver on the equiangular 73 x 144 grid is exactly the NCEP
2.5 degree grid (poles included, 90 -> -90, lon 0 -> 357.5), so no regridding is needed.

Why this start: the solver's own random initial condition is unbalanced and gravity waves swamp the signal.
We start from divergence-free random vorticity at large scales (degrees 3..15) plus a solid-body westerly, with
the geopotential from nonlinear balance (the divergence tendency set to zero), and spin up past the transient.
With dt = 300 s and lmax = 37 the flow keeps steady statistics and 24 h persistence errors near a quarter of the
field's std, as for real Z500 (85.3 m / 343 m).

Levels: the model has one layer, so every level is the same flow (an equivalent-barotropic atmosphere, close to
the real mid-troposphere): the fluid depth, standardised with its mean and std at the end of spin-up, is mapped
to each level's climatological mean and std in LEVEL_CLIMATOLOGY. The winds are the model's own (from its
vorticity and divergence, in m/s; 500 hPa as simulated), scaled at other levels by the ratio of their height std to
500 hPa's, as an equivalent-barotropic atmosphere's winds grow with its height anomalies. They carry what the
height field alone does not: the divergent flow and the balance the model keeps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path

# hPa -> (mean, std) of geopotential height in metres. Means: US Standard Atmosphere 1976; stds: rough values
# growing with height to the tropopause. 500 hPa is pinned to the reference study's Table 1 (NCEP R1).
LEVEL_CLIMATOLOGY: dict[int, tuple[float, float]] = {
    1000: (111.0, 90.0),
    925: (762.0, 95.0),
    850: (1457.0, 110.0),
    700: (3012.0, 170.0),
    600: (4206.0, 250.0),
    500: (5509.7, 343.3),
    400: (7185.0, 420.0),
    300: (9164.0, 500.0),
    250: (10363.0, 530.0),
    200: (11784.0, 520.0),
    150: (13608.0, 470.0),
    100: (16180.0, 400.0),
    70: (18442.0, 380.0),
    50: (20576.0, 400.0),
    30: (23849.0, 450.0),
    20: (26481.0, 500.0),
    10: (31055.0, 600.0),
}
NLAT, NLON = 73, 144
LAT, LON = np.linspace(90, -90, NLAT), np.arange(NLON) * 2.5
"""The 2.5° grid's latitudes (north first) and longitudes, degrees: the store's and the twin's filters'."""
FRAMES_PER_DAY = 4
DT_SECONDS = 300.0  # 600 s blows up
LMAX = 37
STEPS_PER_FRAME = int(6 * 3600 / DT_SECONDS)  # timestep() restarts Adams-Bashforth with one Euler step per call
WESTERLY = 20.0  # m/s at the equator, solid-body
EDDY_SPEED = 15.0  # m/s, rms wind of the initial vortices
EDDY_DEGREES = (3, 15)
TIME_UNITS = "hours since 1800-01-01 00:00:0.0"  # PSL's spelling
MISSING = np.float32(-9.96921e36)
FIELD_ATTRS = {  # PSL's attributes of each variable, beside the shared ones in YearFile
    "hgt": {"long_name": "4xDaily Geopotential height", "units": "m", "GRIB_id": np.int16(7), "GRIB_name": "HGT",
            "var_desc": "Geopotential height"},
    "uwnd": {"long_name": "4xDaily U-wind", "units": "m/s", "GRIB_id": np.int16(33), "GRIB_name": "UGRD",
             "var_desc": "u-wind"},
    "vwnd": {"long_name": "4xDaily V wind", "units": "m/s", "GRIB_id": np.int16(34), "GRIB_name": "VGRD",
             "var_desc": "v-wind"},
}
COORDINATE_ATTRS = {  # PSL names and units
    "level": ("f4", {"units": "millibar", "long_name": "Level", "positive": "down", "axis": "Z"}),
    "lat": ("f4", {"units": "degrees_north", "long_name": "Latitude", "standard_name": "latitude", "axis": "Y"}),
    "lon": ("f4", {"units": "degrees_east", "long_name": "Longitude", "standard_name": "longitude", "axis": "X"}),
    "time": ("f8", {"units": TIME_UNITS, "long_name": "Time", "standard_name": "time", "axis": "T",
                    "delta_t": "0000-00-00 06:00:00"}),
}


def balanced_state(solver, generator):
    """Spectral (geopotential, vorticity, divergence): random large-scale vortices on a westerly, in balance."""
    import torch

    lmax, mmax = solver.lmax, solver.mmax
    degree = torch.arange(lmax).reshape(-1, 1).expand(lmax, mmax)
    order = torch.arange(mmax).reshape(1, -1).expand(lmax, mmax)
    band = (degree >= EDDY_DEGREES[0]) & (degree <= EDDY_DEGREES[1]) & (order <= degree)
    noise = torch.randn(2, lmax, mmax, generator=generator, dtype=torch.float64)
    vorticity = solver.grid2spec(solver.spec2grid(torch.complex(noise[0], noise[1]) * band))
    eddies = solver.getuv(torch.stack((vorticity, torch.zeros_like(vorticity))))
    eddies *= EDDY_SPEED / eddies.pow(2).sum(0).mean().sqrt()
    westerly = WESTERLY * torch.cos(solver.lats).reshape(-1, 1).expand(NLAT, NLON)
    wind = eddies + torch.stack((westerly, torch.zeros_like(westerly)))
    vrtdiv = solver.vrtdivspec(wind)
    vrtdiv[1] = 0
    wind = solver.getuv(vrtdiv)
    flux = solver.vrtdivspec(wind * (solver.spec2grid(vrtdiv[0]) + solver.coriolis))
    mean_depth = solver.gravity * solver.havg * torch.ones(NLAT, NLON, dtype=torch.float64)
    phi = solver.invlap * flux[0] - solver.grid2spec(0.5 * wind.pow(2).sum(0)) + solver.grid2spec(mean_depth)
    return torch.tril(torch.stack((phi, vrtdiv[0], vrtdiv[1])))


@contextlib.contextmanager
def one_thread():
    """The 73 x 144 transforms are too small to gain from threads, and spinning threads thrash on shared cores
    (measured here: 0.76 s per 6 h frame on one thread, 2 to 4 s on two while other jobs ran)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class ShallowWaterModel:
    """The synthetic reanalysis's dynamics: spectral states (geopotential, vorticity, divergence) [3, lmax, mmax]
    stepped 6 h at a time, and the grid fields a reanalysis stores. The depth is standardised by the state at the
    end of spin-up (`calibrate`), so a run and the filters that share its model see the same observable."""

    def __init__(self, seed: int):
        import torch
        from torch_harmonics.examples import ShallowWaterSolver

        self.solver = ShallowWaterSolver(NLAT, NLON, DT_SECONDS, lmax=LMAX, mmax=LMAX)
        self.initial = balanced_state(self.solver, torch.Generator().manual_seed(seed))
        self.depth_mean, self.depth_std = 0.0, 1.0

    def step(self, state):
        return self.solver.timestep(state, STEPS_PER_FRAME)

    def step_members(self, states):
        """`step` of an ensemble [N, 3, lmax, mmax] at once, with batched transforms instead of N calls: the
        solver's scheme exactly (restarted every call: Euler, then its AB2-like second step, then AB3)."""
        import torch

        solver = self.solver
        history = []
        for index in range(STEPS_PER_FRAME):
            history = [self._tendency(states), *history[:2]]
            if index == 0:
                new = now = old = history[0]
            elif index == 1:
                new, now, old = history[0], history[1], history[0]
            else:
                new, now, old = history
            states = states + solver.dt * ((23.0 / 12.0) * new - (16.0 / 12.0) * now + (5.0 / 12.0) * old)
            states = torch.cat([states[:, :1], solver.hyperdiff * states[:, 1:]], dim=1)  # vorticity, divergence
        return states

    def _tendency(self, states):
        """The solver's `dudtspec` for [N, 3, lmax, mmax]: mass flux, vorticity flux, energy gradient."""
        import torch

        solver = self.solver
        grid = solver.spec2grid(states)
        wind = solver.getuv(states[:, 1:])
        absolute = solver.vrtdivspec(wind * (grid[:, 1:2] + solver.coriolis))
        mass = solver.vrtdivspec(wind * grid[:, 0:1])
        energy = solver.grid2spec(grid[:, 0] + 0.5 * (wind[:, 0] ** 2 + wind[:, 1] ** 2))
        return torch.stack([-mass[:, 1], -absolute[:, 1], absolute[:, 0] - solver.lap * energy], dim=1)

    def depth(self, geopotential):
        """Fluid depth (m) on the grid of spectral geopotential [..., lmax, mmax]."""
        return self.solver.spec2grid(geopotential) / self.solver.gravity

    def calibrate(self, state) -> None:
        depth = self.depth(state[0]).numpy()
        self.depth_mean, self.depth_std = float(depth.mean()), float(depth.std())

    def standardised_depth(self, geopotential):
        return (self.depth(geopotential) - self.depth_mean) / self.depth_std

    def fields(self, state) -> np.ndarray:
        """[3, 73, 144]: the standardised depth and the eastward and northward wind (m/s)."""
        return np.concatenate([self.standardised_depth(state[0]).numpy()[None], self.solver.getuv(state[1:]).numpy()])

    def run(self, frames: int, spinup_days: float, progress: bool = False, label: str = "") -> Iterator:
        """Spin up from the balanced start, calibrate, then yield `frames` 6-hourly spectral states."""
        from tqdm import tqdm

        spinup = round(spinup_days * FRAMES_PER_DAY)
        state = self.initial
        bar = tqdm(total=spinup + frames, unit="frame", desc=label, disable=not progress)
        with one_thread(), bar:
            for _ in range(spinup):
                state = self.step(state)
                bar.update()
            self.calibrate(state)
            for _ in range(frames):
                state = self.step(state)
                bar.update()
                yield state


def trajectory(seed: int, frames: int, spinup_days: float, progress: bool = True) -> Iterator[np.ndarray]:
    """`frames` 6-hourly states [3, 73, 144]: the fluid depth, standardised by the state at the end of spin-up,
    and the eastward and northward wind (m/s)."""
    model = ShallowWaterModel(seed)
    for state in model.run(frames, spinup_days, progress, label=f"synth seed {seed}"):
        yield model.fields(state)


def level_fields(state: np.ndarray, levels: Sequence[int]) -> dict[str, np.ndarray]:
    """One `trajectory` state as NCEP fields [levels, 73, 144]: hgt (m), uwnd and vwnd (m/s), in FIELD_ATTRS order."""
    anomaly, u, v = state
    mean = np.array([LEVEL_CLIMATOLOGY[level][0] for level in levels])[:, None, None]
    std = np.array([LEVEL_CLIMATOLOGY[level][1] for level in levels])[:, None, None]
    wind_scale = std / LEVEL_CLIMATOLOGY[500][1]
    return {"hgt": mean + std * anomaly, "uwnd": wind_scale * u, "vwnd": wind_scale * v}


class YearFile:
    """One NCEP-layout `NAME.YYYY.nc` (netCDF4-classic float32, PSL's names and attributes), written under a
    temporary name and renamed on close so a crash leaves no half-written year."""

    def __init__(self, out_dir: Path, name: str, year: int, levels: Sequence[int]):
        import netCDF4

        self.name = name
        self.path = out_dir / f"{name}.{year}.nc"
        self.publishing = atomic_path(self.path)
        ds = netCDF4.Dataset(self.publishing.__enter__(), "w", format="NETCDF4_CLASSIC")
        ds.setncatts(
            {
                "Conventions": "COARDS",
                "title": "4x daily NMC reanalysis layout -- SYNTHETIC: megageo shallow-water model, not observations",
                "history": f"created by megageo data synth on {dt.date.today().isoformat()}",
                "platform": "Model",
            }
        )
        ds.createDimension("time", None)
        ds.createDimension("level", len(levels))
        ds.createDimension("lat", NLAT)
        ds.createDimension("lon", NLON)
        for name, (dtype, attrs) in COORDINATE_ATTRS.items():
            ds.createVariable(name, dtype, (name,)).setncatts(attrs)
        ds["level"][:] = np.asarray(levels, dtype=np.float32)
        ds["lat"][:] = LAT.astype(np.float32)
        ds["lon"][:] = LON.astype(np.float32)
        field = ds.createVariable(self.name, "f4", ("time", "level", "lat", "lon"), fill_value=False)
        field.setncatts(
            {
                **FIELD_ATTRS[self.name],
                "precision": np.int16(0 if self.name == "hgt" else 2),
                "level_desc": "Multiple levels",
                "statistic": "Individual Obs",
                "parent_stat": "Other",
                "dataset": "NCEP Reanalysis",
                "missing_value": MISSING,
            }
        )
        self.ds, self.count = ds, 0

    def append(self, hours: float, fields: np.ndarray) -> None:
        self.ds["time"][self.count] = hours
        self.ds[self.name][self.count] = fields
        self.count += 1

    def close(self) -> Path:
        self.ds.close()
        self.publishing.__exit__(None, None, None)
        return self.path

    def discard(self) -> None:
        self.ds.close()
        self.publishing.__exit__(RuntimeError, RuntimeError("discarded"), None)


def synthesize(
    out_dir: str | Path,
    days: float,
    seed: int = 0,
    levels: Sequence[int] = (500,),
    start: str = "1979-01-01",
    spinup_days: float = 3.0,
    progress: bool = True,
    runs: int = 1,
) -> list[Path]:
    """Write `days` of 6-hourly synthetic geopotential height and winds from `start` as yearly hgt.YYYY.nc,
    uwnd.YYYY.nc and vwnd.YYYY.nc files in `out_dir`; returns their paths. The same seed gives byte-identical data.

    `runs` > 1 writes that many runs, from seeds `seed`, `seed` + 1, ..., each from `start`'s date in a later year
    than the last one's files: the unforced model keeps each balanced start's zonal flow, so a store of many runs
    (built with `--allow-gaps`) holds many climates where one long run holds one."""
    unknown = [level for level in levels if level not in LEVEL_CLIMATOLOGY]
    if unknown:
        raise MegageoError(f"levels {unknown} not among the NCEP levels {sorted(LEVEL_CLIMATOLOGY, reverse=True)}")
    if days <= 0:
        raise MegageoError(f"days must be positive, got {days}")
    if runs < 1:
        raise MegageoError(f"runs must be at least 1, got {runs}")
    try:
        first = dt.datetime.fromisoformat(start)
    except ValueError:
        raise MegageoError(f"start '{start}' is not a date like 1979-01-01") from None
    if runs > 1 and (first.month, first.day) == (2, 29):
        raise MegageoError("several runs start on the same date in later years; 29 February is not in all of them")
    years_per_run = (first + dt.timedelta(days=days)).year - first.year + 1
    return [path for run in range(runs)
            for path in _synthesize_run(out_dir, days, seed + run, levels,
                                        first.replace(year=first.year + run * years_per_run), spinup_days, progress)]


def _synthesize_run(out_dir: str | Path, days: float, seed: int, levels: Sequence[int], first: dt.datetime,
                    spinup_days: float, progress: bool) -> list[Path]:
    import netCDF4

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    year_files: list[YearFile] = []
    try:
        for i, state in enumerate(trajectory(seed, round(days * FRAMES_PER_DAY), spinup_days, progress)):
            when = first + dt.timedelta(hours=6 * i)
            if not year_files or year_files[0].path.name != f"hgt.{when.year}.nc":
                written += [year_file.close() for year_file in year_files]
                year_files = []
                year_files = [YearFile(out_dir, name, when.year, levels) for name in FIELD_ATTRS]
            hours = netCDF4.date2num(when, TIME_UNITS, "standard")
            for year_file, fields in zip(year_files, level_fields(state, levels).values()):
                year_file.append(hours, fields)
        written += [year_file.close() for year_file in year_files]
    except BaseException:
        for year_file in year_files:
            year_file.discard()
        raise
    return written
