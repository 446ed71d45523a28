"""The ensemble baselines of the twin experiment, with the truth's own shallow-water model as their dynamics: a
perfect-model setting the filters enjoy and the learned prior does not.

- EnKF: DAPPER's square-root EnKF (the global ETKF, no localisation) on the model's grid state.
- LETKF (Hunt, Kostelich & Szunyogh 2007): every grid point of the model's 2.5° grid takes its own ensemble
  transform from the stations within reach, their error variance divided by a Gaspari–Cohn taper of great-circle
  distance, and applies it to the geopotential, vorticity and divergence there. Checked against DAPPER's
  square-root analysis point by point (tests/da/test_letkf.py); batched here because DAPPER's own LETKF loops over
  points in Python and localises on a flat grid, not the sphere.
- free: the same initial ensemble stepped without analyses.

Every analysis works on grid fields; members return to the model's spectral space, where they step exactly as the
truth does. Members start as independent balanced states spun up like the truth (a climatological ensemble).
Observations are Z500 at the stations: the model's standardised depth mapped to the level's climatology, linear in
the geopotential.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from megageo.da.localisation import gaspari_cohn, great_circle_km

if TYPE_CHECKING:
    from megageo.data.synth import ShallowWaterModel


def import_dapper(module: str) -> ModuleType:
    """DAPPER's `module`, imported without its side effect on this process: `dapper.tools.multiproc` caps every
    thread pool at one thread on import (`threadpoolctl.threadpool_limits(1)`, meant for its worker processes), which
    left torch on one thread for the rest of `megageo da twin` and doubled the generative sampler's time after the
    baselines had run. The pools' thread counts from before the import are set back."""
    import threadpoolctl

    before = {pool["user_api"]: pool["num_threads"] for pool in threadpoolctl.threadpool_info()}
    try:
        return importlib.import_module(module)
    finally:
        threadpoolctl.threadpool_limits(before)


POINTS_PER_BATCH = 1024
"""Grid points whose N × N transforms are formed at once (bounds the [points, N, stations] intermediate)."""


def letkf_transforms(observed: torch.Tensor, innovation: torch.Tensor, precision: torch.Tensor,
                     inflation: float) -> torch.Tensor:
    """The LETKF's weights [P, N, N] for P local analyses: column k maps the prior anomalies to analysis member
    k's offset from the prior mean. `observed` [P, N, s] is each analysis's ensemble at its s stations,
    `innovation` [P, s] their observations minus its mean, `precision` [P, s] their R⁻¹ diagonal (the tapered
    inverse error variance; 0 pads a point with fewer stations), `inflation` the prior covariance's inflation."""
    members = observed.shape[1]
    anomalies = observed - observed.mean(1, keepdim=True)
    weighted = precision[:, None, :] * anomalies  # [P, N, s]: Yᵀ R⁻¹
    gram = weighted @ anomalies.transpose(1, 2)  # [P, N, N]: Yᵀ R⁻¹ Y
    eye = torch.eye(members, dtype=observed.dtype)
    values, vectors = torch.linalg.eigh(gram + (members - 1) / inflation * eye)
    covariance = (vectors / values[:, None, :]) @ vectors.transpose(1, 2)  # P̃ in ensemble space
    mean = covariance @ (weighted @ innovation[..., None])  # [P, N, 1]
    root = (vectors / values[:, None, :].sqrt()) @ vectors.transpose(1, 2) * (members - 1) ** 0.5
    return mean + root


def letkf_analysis(members: torch.Tensor, observed: torch.Tensor, observations: torch.Tensor, error_std: float,
                   taper: torch.Tensor, inflation: float) -> torch.Tensor:
    """Analysis members [N, P, V] of prior members [N, P, V] (V variables at each of P points), given the prior
    in observation space [N, p], the observations [p] and each point's taper [P, p]. Each batch of points reads
    only the stations some point of it can reach (a 1000 km half-width reaches ~5 % of them)."""
    mean = members.mean(0)
    anomalies = members - mean
    innovation = observations - observed.mean(0)
    analysis = torch.empty_like(members)
    for start in range(0, members.shape[1], POINTS_PER_BATCH):
        points = slice(start, start + POINTS_PER_BATCH)
        weight = taper[points]
        reach = int((weight > 0).sum(1).max())
        weight, local = weight.topk(max(reach, 1), dim=1)  # [P, s]: the stations in reach first, zeros after
        transforms = letkf_transforms(observed.T[local].permute(0, 2, 1), innovation[local], weight / error_std**2,
                                      inflation)  # [P, N, N]
        analysis[:, points] = mean[points] + torch.einsum("npv,pnk->kpv", anomalies[:, points], transforms)
    return analysis


def enkf_analysis(members: torch.Tensor, observed: torch.Tensor, observations: torch.Tensor, error_std: float,
                  inflation: float) -> torch.Tensor:
    """DAPPER's square-root EnKF (symmetric ETKF, no localisation) of members [N, P, V], the prior anomalies in
    state and observation space inflated by √inflation first (DAPPER's own `post_process` inflation)."""
    EnKF_analysis = import_dapper("dapper.da_methods.ensemble").EnKF_analysis
    GaussRV = import_dapper("dapper.tools.randvars").GaussRV

    def inflate(ensemble: np.ndarray) -> np.ndarray:
        return ensemble.mean(0) + inflation**0.5 * (ensemble - ensemble.mean(0))

    state = inflate(members.flatten(1).numpy())
    noise = GaussRV(C=error_std**2, M=len(observations))
    analysis = EnKF_analysis(state, inflate(observed.numpy()), noise, observations.numpy(), "Sqrt")
    return torch.as_tensor(analysis).reshape(members.shape)


Analysis = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(members [N, P, V] on the grid, the members at the stations [N, p], observations [p]) → analysis members."""


@dataclass
class ShallowWaterEnsemble:
    """The twin's truth model run as an ensemble and observed at the stations of the store's grid."""

    model: ShallowWaterModel
    rows: np.ndarray
    cols: np.ndarray
    stations: np.ndarray
    level_mean: float
    level_std: float

    @property
    def station_points(self) -> np.ndarray:
        """The stations' indices in the model's flattened grid."""
        from megageo.data.synth import NLON

        width = len(self.cols)
        return self.rows[self.stations // width] * NLON + self.cols[self.stations % width]

    def height(self, states: torch.Tensor) -> np.ndarray:
        """Z500 (m) [N, H, W] on the store's grid."""
        field = self.level_mean + self.level_std * self.model.standardised_depth(states[:, 0]).numpy()
        return field[:, self.rows][:, :, self.cols]

    def observe(self, grids: torch.Tensor) -> torch.Tensor:
        """Z500 at the stations [N, p] from grid states [N, 3, NLAT, NLON] (geopotential first)."""
        depth = grids[:, 0].flatten(1)[:, self.station_points] / self.model.solver.gravity
        return self.level_mean + self.level_std * (depth - self.model.depth_mean) / self.model.depth_std

    def taper(self, half_width_km: float) -> torch.Tensor:
        """[NLAT · NLON, p]: each model grid point's Gaspari–Cohn weight of each station."""
        from megageo.data.synth import LAT, LON

        points_lat, points_lon = np.repeat(LAT, len(LON)), np.tile(LON, len(LAT))
        stations = self.station_points
        return torch.as_tensor(gaspari_cohn(great_circle_km(points_lat, points_lon, points_lat[stations],
                                                            points_lon[stations]), half_width_km))

    def analyse(self, states: torch.Tensor, observations: np.ndarray, analysis: Analysis) -> torch.Tensor:
        """One analysis of spectral members [N, 3, l, m] on the model's grid; returns spectral members."""
        solver = self.model.solver
        grids = solver.spec2grid(states)  # [N, 3, NLAT, NLON]
        flat = grids.flatten(2).transpose(1, 2)  # [N, P, 3]
        analysed = analysis(flat, self.observe(grids), torch.as_tensor(observations, dtype=flat.dtype))
        return torch.tril(solver.grid2spec(analysed.transpose(1, 2).reshape(grids.shape)))


def initial_ensemble(model: ShallowWaterModel, members: int, seed: int, spinup_days: float) -> torch.Tensor:
    """`members` balanced random starts (their own seeds), spun up together like the truth."""
    from megageo.data.synth import FRAMES_PER_DAY, balanced_state

    starts = torch.stack([balanced_state(model.solver, torch.Generator().manual_seed(20_000 + 100 * seed + k))
                          for k in range(members)])
    for _ in range(round(spinup_days * FRAMES_PER_DAY)):
        starts = model.step_members(starts)
    return starts


def cycle(ensemble: ShallowWaterEnsemble, start: torch.Tensor, observations: np.ndarray,
          analysis: Analysis | None, label: str = "") -> np.ndarray:
    """Z500 members [F, N, H, W] at the truth's frames 0 .. F − 1 from members `start` at frame 0: each frame
    analysed with its observations [F, p] then stepped 6 h, or only stepped when `analysis` is None (free run)."""
    from tqdm import tqdm

    states, fields = start, []
    for frame, y in enumerate(tqdm(observations, desc=label, unit="cycle", disable=not label)):
        if frame:
            states = ensemble.model.step_members(states)
        if analysis is not None:
            states = ensemble.analyse(states, y, analysis)
        fields.append(ensemble.height(states).astype(np.float32))
    return np.stack(fields)


@dataclass(frozen=True)
class FilterRun:
    """One cycling baseline, named by what rebuilds it in any process: the LETKF's Gaspari–Cohn half-width and
    inflation, the EnKF's inflation, or neither (the free run). Its taper (88 MB at 1,051 stations) is built where
    it runs instead of travelling to a worker."""

    kind: Literal["letkf", "enkf", "free"]
    half_width_km: float = 0.0
    inflation: float = 1.0

    @property
    def label(self) -> str:
        return {"letkf": "LETKF", "enkf": "EnKF", "free": "free"}[self.kind]

    def analysis(self, ensemble: ShallowWaterEnsemble, error_std: float) -> Analysis | None:
        if self.kind == "letkf":
            return partial(letkf_analysis, error_std=error_std, taper=ensemble.taper(self.half_width_km),
                           inflation=self.inflation)
        if self.kind == "enkf":
            return partial(enkf_analysis, error_std=error_std, inflation=self.inflation)
        return None


def run_filter(ensemble: ShallowWaterEnsemble, start: torch.Tensor, observations: np.ndarray, kept: np.ndarray,
               run: FilterRun, error_std: float, label: str = "") -> np.ndarray:
    """`cycle` of `run` through the observations [F, p], returning only the frames `kept` [K, N, H, W]."""
    return cycle(ensemble, start, observations, run.analysis(ensemble, error_std), label)[kept]
