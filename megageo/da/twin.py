"""`megageo da twin`: a twin experiment. A shallow-water truth the model never saw (the generator of the
embedded data, started from other seeds), observed at a fixed random fraction of grid points every 6 h with
Gaussian errors, assimilated by the generative method and by baselines, all scored against the truth.

Methods, each analysing the state at every scored cycle's analysis time:
- generative: posterior samples of the window given its observations (`megageo.da.posterior`); in filter mode the
  window ends at the analysis time. No cycling: each analysis is one stage, as in STORM. With
  `diffusion.start_time` < 1 the sampler starts from window OI's analysis of the window (below), noised to that time.
- LETKF and EnKF (N = `filter_members`), with the truth's own shallow-water model as their dynamics, cycling from a
  climatological ensemble (`megageo.da.ensemble_filters`); free: that ensemble without analyses.
- OI: optimal interpolation of the analysis time's observations onto the climatological mean, with the training
  split's sample covariance as B, Gaspari–Cohn localised over great-circle distance (the radius tuned on a
  separate truth); its analysis variance gives a Gaussian spread and CRPS.
- window OI: the same of the generative window's observations, B the covariance of the training split's windows:
  the generative method with a Gaussian prior in place of the learned one, so the two differ by the prior alone.
- prior: members of the learned prior without observations (what the model knows before it sees any).
- climatology: the training split's mean and per-point standard deviation.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megageo.da.localisation import gaspari_cohn, great_circle_km
from megageo.errors import MegageoError
from megageo.io.atomic import write_text

LOCALISATION_RADII_KM = (1000.0, 2000.0, 4000.0, 8000.0)
"""Gaspari–Cohn half-widths tried for OI on the tuning truth; the support is twice the half-width."""
LETKF_CHOICES = tuple(itertools.product((1500.0, 2500.0, 3500.0), (1.05, 1.1, 1.25)))
"""(Gaspari–Cohn half-width km, inflation) pairs tried for the LETKF on the tuning truth, wide enough that the
optimum lies inside: over that truth's 100 cycles 2500 km scores 7.5 m at 1.05 and at 1.1, 1500 km 11.1 m and
3500 km 8.4 m at 1.1, and 1.25 diverges (36, 30 and 31 m at 1500, 2000 and 2500 km). Over 8 cycles, where the
ensemble is still leaving its climatological start, the ranking differs (1500 km and 1.25: 9.7 m, 2500 km and
1.1: 12.5 m), hence `TwinSettings.tuning_cycles`."""
ENKF_INFLATIONS = (1.1, 1.3, 1.6)
"""Multiplicative inflations tried for the global EnKF, which has no localisation to keep its spread."""
TUNING_SEED = 999


@dataclass(frozen=True)
class TwinSettings:
    cycles: int = 100
    burn_in: int = 8
    seeds: int = 3
    members: int | None = None
    fraction: float = 0.1
    noise: float = 0.1
    mode: str = "filter"
    batch_cycles: int = 4
    """Cycles sampled together (their windows are independent, so they share one sampler pass)."""
    filter_members: int = 20
    """LETKF, EnKF and free-run ensemble size."""
    tuning_cycles: int | None = None
    """Scored cycles of the separate truth on which OI's and the LETKF's localisation and the inflations are
    tuned (after the same burn-in); None: as many as `cycles`, because a short run ranks the LETKF's choices
    differently from a long one: on the first truth 2000 km and 1.25, the best of 2 tuning cycles, scores 9.6 m
    over 8 cycles and 35.7 m over 100."""
    workers: int | None = None
    """Processes running the LETKF, EnKF and free runs side by side, one thread each (`megageo.da.filter_pool`);
    None: one per usable core, at most one per tuning run; 1: in this process, on its threads."""

    def check(self) -> None:
        if (self.cycles < 1 or self.burn_in < 0 or self.seeds < 1 or self.batch_cycles < 1
                or (self.tuning_cycles is not None and self.tuning_cycles < 1)
                or (self.workers is not None and self.workers < 1)):
            raise MegageoError(f"twin needs cycles >= 1, burn_in >= 0, seeds >= 1, batch cycles >= 1, tuning "
                               f"cycles >= 1 and workers >= 1; got {self.cycles}, {self.burn_in}, {self.seeds}, "
                               f"{self.batch_cycles}, {self.tuning_cycles}, {self.workers}")
        if self.filter_members < 2:
            raise MegageoError(f"twin needs at least 2 filter members, got {self.filter_members}")
        if not 0 < self.fraction <= 1 or self.noise <= 0 or (self.members is not None and self.members < 2):
            raise MegageoError(f"twin needs 0 < fraction <= 1, noise > 0 and at least 2 members; got {self.fraction}, "
                               f"{self.noise}, {self.members}")


class OptimalInterpolation:
    """x_a = x_b + K (y − H x_b), K = ρ∘(B Hᵀ) (ρ∘(H B Hᵀ) + R)⁻¹, B the sample covariance of training windows of
    L frames, ρ a Gaspari–Cohn taper over great-circle distance (not over time lag). y holds every frame's
    stations and the analysis is frame `target`'s. With L = 1 this is OI of one time's observations; with the
    generative method's window it is that method's Gaussian counterpart: the same observations, a climatological
    Gaussian prior over the window instead of the learned one."""

    def __init__(self, background: np.ndarray, windows: np.ndarray, stations: np.ndarray, lat: np.ndarray,
                 lon: np.ndarray, error_std: float, half_width_km: float, target: int = -1):
        """`background` [H, W] for every frame, `windows` [S, L, H, W] training anomalies."""
        from scipy.linalg import cho_factor, solve_triangular

        points_lat, points_lon = np.repeat(lat, len(lon)), np.tile(lon, len(lat))
        taper = gaspari_cohn(great_circle_km(points_lat, points_lon, points_lat[stations], points_lon[stations]),
                             half_width_km)
        frames = windows.shape[1]
        windows = windows.reshape(*windows.shape[:2], -1)
        windows = windows - windows.mean(0)  # B is their sample covariance
        observed = windows[:, :, stations].reshape(len(windows), -1)
        analysed = windows[:, target]
        self.cross = analysed.T @ observed / (len(windows) - 1) * np.tile(taper, frames)
        innovation_cov = (observed.T @ observed / (len(windows) - 1) * np.tile(taper[stations], (frames, frames))
                          + error_std**2 * np.eye(observed.shape[1]))
        self.factor = cho_factor(innovation_cov, lower=True)
        whitened = solve_triangular(self.factor[0], self.cross.T, lower=True)  # diag(C Σ⁻¹ Cᵀ) sums its squares
        variance = analysed.var(0, ddof=1) - np.square(whitened).sum(0)
        self.std = np.sqrt(np.clip(variance, 1e-12, None)).reshape(background.shape)
        self.background, self.stations = background, stations

    def analyse(self, y: np.ndarray) -> np.ndarray:
        """`y` [L, M]: the window's observations, frame by frame."""
        from scipy.linalg import cho_solve

        flat = self.background.ravel()
        innovation = (y - flat[self.stations]).ravel()
        return (flat + self.cross @ cho_solve(self.factor, innovation)).reshape(self.background.shape)


def window_first_guesses(climatology: np.ndarray, windows: np.ndarray, stations: np.ndarray, lat: np.ndarray,
                         lon: np.ndarray, error_std: float, half_width_km: float, observations: np.ndarray,
                         starts: np.ndarray) -> np.ndarray:
    """Window OI of every frame of the windows starting at `starts` [K], given `observations` [T, M] at
    `stations` → [K, L, H, W]: the first guess a sampler with `diffusion.start_time` < 1 starts from. One frame's
    gain at a time (each is H·W × L·M)."""
    frames = windows.shape[1]
    guesses = np.empty((len(starts), frames, *climatology.shape))
    for target in range(frames):
        oi = OptimalInterpolation(climatology, windows, stations, lat, lon, error_std, half_width_km, target)
        guesses[:, target] = [oi.analyse(observations[start : start + frames]) for start in starts]
    return guesses


def sw_grid_indices(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the store's grid sits in the shallow-water model's 2.5° grid; refuses a grid that is not a subset."""
    from megageo.data.synth import NLAT, NLON

    model_lat, model_lon = np.linspace(90, -90, NLAT), np.arange(NLON) * 360.0 / NLON
    rows = np.abs(lat[:, None] - model_lat[None]).argmin(1)
    cols = np.abs(np.mod(lon, 360)[:, None] - model_lon[None]).argmin(1)
    if np.abs(model_lat[rows] - lat).max() > 1e-3 or np.abs(model_lon[cols] - np.mod(lon, 360)).max() > 1e-3:
        raise MegageoError("the twin experiment's truth is the shallow-water model on the 2.5° NCEP grid; this "
                           "store's grid is not a subset of it")
    return rows, cols


def truth_run(seed: int, frames: int, variables: list[str], levels: list[float], rows: np.ndarray,
              cols: np.ndarray) -> tuple[Any, np.ndarray]:
    """A shallow-water run the training data never held: its model (the filters' dynamics, calibrated on this run)
    and the model's channels on the store's grid [frames, C, H, W]."""
    from megageo.data.synth import ShallowWaterModel, level_fields

    model = ShallowWaterModel(10_000 + seed)
    fields = []
    for state in model.run(frames, spinup_days=3.0):
        named = {name: level_fields(model.fields(state), [int(level)])[name][0] for name, level in zip(variables, levels)}
        fields.append(np.stack([named[name][np.ix_(rows, cols)] for name in variables]))
    return model, np.stack(fields)


@dataclass
class MethodScores:
    rmse: list[float]
    spread: list[float]
    crps: list[float]
    zonal_mse: list[np.ndarray]
    ranks: list[int] | None = None

    def summary(self, members: int | None) -> dict[str, float]:
        rmse = math.sqrt(float(np.mean(np.square(self.rmse))))
        spread = math.sqrt(float(np.mean(np.square(self.spread))))
        ratio = spread / rmse * (math.sqrt((members + 1) / members) if members else 1.0)
        return {"rmse": rmse, "spread": spread, "spread_skill": ratio, "crps": float(np.mean(self.crps))}


def run_twin_experiment(checkpoint: str | Path, out_dir: Path, settings: TwinSettings, store: str | None = None,
                        overrides: tuple[str, ...] = ()) -> Path:
    """`overrides` set the sampler (`diffusion.tau=0.05`, ...); the report records the sampler that ran."""
    from tqdm import tqdm

    from megageo.da import scores
    from megageo.da.analysis import Channels, load_diffusion_release, on_the_sphere, sampling_denoiser
    from megageo.da.experiment_cache import ExperimentCache
    from megageo.da.filter_pool import FilterPool, usable_cores
    from megageo.data.grid import check_spectral_truncation
    from megageo.data.store import Store

    settings.check()
    started = time.monotonic()
    release, config = load_diffusion_release(checkpoint, "da twin", overrides)
    grid = Store(store or release.stats["store"])
    truncation = config.diffusion.spectral_truncation
    check_spectral_truncation(truncation, grid.lat)
    rows, cols = sw_grid_indices(grid.lat, grid.lon)
    channels = Channels.of(release.stats)
    if "hgt" not in channels.variables:
        raise MegageoError("the twin experiment observes geopotential height; this model carries no hgt channel")
    observed = channels.variables.index("hgt")
    members = settings.members or config.diffusion.members
    window = config.data.t_in
    before = window - 1 if settings.mode == "filter" else (window - 1) // 2

    train_frames = training_frames(grid, channels)
    climatology = train_frames.mean(0)
    anomalies = train_frames[:, observed] - climatology[observed]
    training_windows = np.stack([anomalies[start : start + window]
                                 for start in grid.window_starts(0, grid.train_end, window)])
    error_std = settings.noise * float(np.sqrt(np.mean(anomalies**2)))
    model = sampling_denoiser(release)
    height, width = len(grid.lat), len(grid.lon)
    stations_count = max(1, round(settings.fraction * height * width))

    def experiment(seed: int, cycles: int, radii: dict[str, tuple[float, ...]],
                   letkf: tuple[tuple[float, float], ...], enkf: tuple[float, ...], generative: bool) -> dict[str, Any]:
        from megageo.da.ensemble_filters import FilterRun, ShallowWaterEnsemble, initial_ensemble
        from megageo.data.synth import LEVEL_CLIMATOLOGY

        rng = np.random.default_rng(seed)
        sw_model, truth = truth_run(seed, settings.burn_in + window - 1 + cycles, channels.variables, channels.levels,
                                    rows, cols)
        stations = np.sort(rng.choice(height * width, stations_count, replace=False))
        observations = truth[:, observed].reshape(len(truth), -1)[:, stations]
        observations = observations + error_std * rng.standard_normal(observations.shape)
        times = settings.burn_in + before + np.arange(cycles)
        truths = truth[times, observed]
        results: dict[str, Any] = {}
        climates = {"oi": (anomalies[:, None], 0), "window_oi": (training_windows, before)}
        for method, method_radii in radii.items():
            climate, target = climates[method]
            for radius in method_radii:
                oi = OptimalInterpolation(climatology[observed], climate, stations, grid.lat, grid.lon, error_std,
                                          radius, target)
                interpolated = [oi.analyse(observations[t - target : t - target + climate.shape[1]]) for t in times]
                results[f"{method}_{radius:g}"] = MethodScores(*zip(*[
                    (scores.ensemble_rmse(analysis[None], truth[t, observed], grid.lat),
                     scores.gaussian_spread(oi.std, grid.lat),
                     scores.gaussian_crps(analysis, oi.std, truth[t, observed], grid.lat),
                     scores.zonal_mean_square_error(analysis, truth[t, observed]))
                    for analysis, t in zip(interpolated, times)]))

        level_climatology = LEVEL_CLIMATOLOGY[int(channels.levels[observed])]
        ensemble = ShallowWaterEnsemble(sw_model, rows, cols, stations, *level_climatology)
        start = initial_ensemble(sw_model, settings.filter_members, seed, spinup_days=3.0)
        runs = {**{letkf_key(*choice): FilterRun("letkf", *choice) for choice in letkf},
                **{f"enkf_{inflation:g}": FilterRun("enkf", inflation=inflation) for inflation in enkf},
                **({"free": FilterRun("free")} if generative else {})}
        fields = pool.run(runs, ensemble, start, observations[: times[-1] + 1], times, error_std, f"seed {seed}")
        results.update({key: ensemble_scores(members.swapaxes(0, 1), truths, grid.lat)
                        for key, members in fields.items()})
        if not generative:
            return results
        climate_std = np.sqrt(anomalies.var(0, ddof=1))
        results["climatology"] = MethodScores(*zip(*[
            (scores.ensemble_rmse(climatology[observed][None], truth[t, observed], grid.lat),
             scores.gaussian_spread(climate_std, grid.lat),
             scores.gaussian_crps(climatology[observed], climate_std, truth[t, observed], grid.lat),
             scores.zonal_mean_square_error(climatology[observed], truth[t, observed])) for t in times]))
        generator = torch.Generator().manual_seed(seed)
        prior = sample_window(model, config.diffusion, members, window, release.frame_shape, generator)
        prior_windows = on_the_sphere(channels.physical(prior), grid.lat, truncation)[:, :, observed]
        results["prior"] = ensemble_scores(prior_windows[:, before], truths, grid.lat)
        truth_windows = np.stack([truth[t - before : t - before + window, observed] for t in times])
        tendencies = []
        flat = np.concatenate([frame * len(channels.variables) * height * width + observed * height * width + stations
                               for frame in range(window)])
        first_guesses = None
        if config.diffusion.start_time < 1:
            guesses = window_first_guesses(climatology[observed], training_windows, stations, grid.lat, grid.lon,
                                           error_std, radii["window_oi"][0], observations, times - before)
            states = np.repeat(climatology[None, None], len(times), 0).repeat(window, 1)
            states[:, :, observed] = guesses
            first_guesses = channels.normalised(states)
        analyses = []
        for start_cycle in tqdm(range(0, cycles, settings.batch_cycles), desc=f"generative, seed {seed}", unit="batch"):
            batch = times[start_cycle : start_cycle + settings.batch_cycles]
            y = np.stack([observations[t - before : t - before + window].ravel() for t in batch])
            y_normal, std_normal = channels.normalise(y, error_std, flat, (window, *release.frame_shape))
            sampled = sample_window(model, config.diffusion, members * len(batch), window, release.frame_shape,
                                    generator, flat, np.repeat(y_normal, members, axis=0), std_normal,
                                    None if first_guesses is None else
                                    first_guesses[start_cycle : start_cycle + len(batch)].repeat_interleave(members, 0))
            windows = on_the_sphere(channels.physical(sampled), grid.lat, truncation)[:, :, observed]
            tendencies.append(scores.rms_tendency(windows, grid.lat) ** 2)
            analyses.append(windows[:, before].reshape(len(batch), members, height, width))
        results["generative"] = ensemble_scores(np.concatenate(analyses).swapaxes(0, 1), truths, grid.lat)
        results["texture"] = {
            "truth": texture(truth_windows, grid.lat),
            "prior": texture(prior_windows, grid.lat),
            "generative": {"tendency": math.sqrt(float(np.mean(tendencies))),
                           "roughness": scores.rms_zonal_difference(np.concatenate(analyses), grid.lat)}}
        results["truth_example"] = (truth[times[-1], observed], np.concatenate(analyses)[-1].mean(0), stations)
        return results

    tuning_cycles = settings.tuning_cycles or settings.cycles
    made_of = {"settings": {**asdict(settings), "workers": None}, "members": members, "checkpoint": str(checkpoint),
               "step": release.step, "store": str(grid.path.resolve()), "sampler": asdict(config.diffusion)}
    cache = ExperimentCache(out_dir / "partial", json.dumps(made_of, sort_keys=True, default=str))
    with FilterPool(settings.workers or min(usable_cores(), len(LETKF_CHOICES) + len(ENKF_INFLATIONS))) as pool:
        tuning = cache.get_or_run("tuning", partial(
            experiment, TUNING_SEED, tuning_cycles, dict.fromkeys(INTERPOLATIONS, LOCALISATION_RADII_KM),
            LETKF_CHOICES, ENKF_INFLATIONS, generative=False))
        tuned = {key: value.summary(None)["rmse"] for key, value in tuning.items()}
        radius = {method: min(LOCALISATION_RADII_KM, key=lambda r: tuned[f"{method}_{r:g}"])
                  for method in INTERPOLATIONS}
        letkf = min(LETKF_CHOICES, key=lambda choice: tuned[letkf_key(*choice)])
        inflation = min(ENKF_INFLATIONS, key=lambda i: tuned[f"enkf_{i:g}"])
        runs = [cache.get_or_run(f"seed_{seed}", partial(
            experiment, seed, settings.cycles, {method: (radius[method],) for method in INTERPOLATIONS}, (letkf,),
            (inflation,), generative=True)) for seed in range(settings.seeds)]
    for run in runs:
        for method in INTERPOLATIONS:
            run[method] = run.pop(f"{method}_{radius[method]:g}")
        run["letkf"], run["enkf"] = run.pop(letkf_key(*letkf)), run.pop(f"enkf_{inflation:g}")
    summary = summarise(runs, {"generative": members, "prior": members, "letkf": settings.filter_members,
                               "enkf": settings.filter_members, "free": settings.filter_members})
    report = {"settings": {**asdict(settings), "members": members, "tuning_cycles": tuning_cycles,
                           "stations": stations_count, "grid": [height, width], "error_std_m": error_std,
                           "window": window, "checkpoint": str(checkpoint),
                           "step": release.step, "sampler": asdict(config.diffusion)},
              "tuned": {**{f"{method}_half_width_km": radius[method] for method in INTERPOLATIONS},
                        "letkf_half_width_km": letkf[0], "letkf_inflation": letkf[1],
                        "enkf_inflation": inflation},
              "tuning_rmse": {**{method: {f"{r:g} km": tuned[f"{method}_{r:g}"] for r in LOCALISATION_RADII_KM}
                                 for method in INTERPOLATIONS},
                              "letkf": {f"{w:g} km, {i:g}": tuned[letkf_key(w, i)] for w, i in LETKF_CHOICES},
                              "enkf": {f"{i:g}": tuned[f"enkf_{i:g}"] for i in ENKF_INFLATIONS}},
              "methods": summary,
              "latitudes": grid.lat.tolist(),
              "zonal_rmse": zonal_rmse(runs),
              "rmse_by_cycle": {method: [[float(value) for value in run[method].rmse] for run in runs]
                                for method in METHODS},
              "texture": {source: {key: float(np.mean([run["texture"][source][key] for run in runs]))
                                   for key in ("tendency", "roughness")} for source in ("truth", "prior", "generative")},
              "rank_histogram": np.sum([run["generative"].ranks for run in runs], axis=0).tolist(),
              "wall_seconds": time.monotonic() - started + cache.reused_seconds,
              "reused_seconds": cache.reused_seconds}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "twin.json", json.dumps(report, indent=1))
    plot_twin(runs[0], report, grid.lat, grid.lon, out_dir)
    written = write_text(out_dir / "report.md", twin_markdown(report))
    cache.clear()
    return written


def training_frames(grid: Any, channels: Any) -> np.ndarray:
    """The store's training split for the model's channels, in physical units [T, C, H, W]."""
    index = [grid.channels([name], [level])[0] for name, level in zip(channels.variables, channels.levels)]
    return grid.read(0, grid.train_end)[:, index].astype(np.float64)


def sample_window(model: torch.nn.Module, settings: Any, count: int, window: int, frame_shape: tuple[int, int, int],
                  generator: torch.Generator, flat_index: np.ndarray | None = None, y: np.ndarray | None = None,
                  error_std: np.ndarray | None = None, start: torch.Tensor | None = None) -> torch.Tensor:
    """`count` windows of the prior, or of the posterior given `y` [count, M] (normalised) observed at
    `flat_index` with error stds `error_std` [M], from the first guesses `start` [count, L, C, H, W] when
    `settings.start_time` < 1."""
    from megageo.da.observations import ObservationOperator
    from megageo.da.posterior import sample_posterior

    if flat_index is None:  # the prior has no first guess to start from
        return sample_posterior(model, replace(settings, start_time=1.0), (count, window, *frame_shape), None, None,
                                None, generator)
    observe = ObservationOperator(torch.as_tensor(flat_index, dtype=torch.long))
    return sample_posterior(model, settings, (count, window, *frame_shape), observe,
                            torch.as_tensor(y, dtype=torch.float32),
                            torch.as_tensor(error_std, dtype=torch.float32), generator, start=start)


def texture(windows: np.ndarray, lat: np.ndarray) -> dict[str, float]:
    """windows [..., L, H, W] → their rms 6-hour change and zonal neighbour difference (`megageo.da.scores`)."""
    from megageo.da import scores

    return {"tendency": scores.rms_tendency(windows, lat), "roughness": scores.rms_zonal_difference(windows, lat)}


def ensemble_scores(members: np.ndarray, truths: np.ndarray, lat: np.ndarray) -> MethodScores:
    """members [N, cycles, H, W] (or [N, H, W], one ensemble for every cycle), truths [cycles, H, W]."""
    from megageo.da import scores

    per_cycle = [members if members.ndim == 3 else members[:, k] for k in range(len(truths))]
    return MethodScores([scores.ensemble_rmse(m, t, lat) for m, t in zip(per_cycle, truths)],
                        [scores.ensemble_spread(m, lat) for m in per_cycle],
                        [scores.fair_crps(m, t, lat) for m, t in zip(per_cycle, truths)],
                        [scores.zonal_mean_square_error(m.mean(0), t) for m, t in zip(per_cycle, truths)],
                        np.sum([scores.rank_histogram(m, t) for m, t in zip(per_cycle, truths)], axis=0).tolist())


METHODS = ("generative", "letkf", "enkf", "oi", "window_oi", "free", "prior", "climatology")
ANALYSES = ("generative", "letkf", "enkf", "oi", "window_oi")
INTERPOLATIONS = ("oi", "window_oi")
"""The Gaussian analyses (`OptimalInterpolation`): of the analysis time's stations, and of the generative window's."""


def letkf_key(half_width_km: float, inflation: float) -> str:
    return f"letkf_{half_width_km:g}_{inflation:g}"


def summarise(runs: list[dict[str, Any]], ensemble_sizes: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Each method's scores over seeds; `ensemble_sizes` names the ensembles (the others are Gaussian)."""
    summary = {}
    for method in METHODS:
        per_seed = [run[method].summary(ensemble_sizes.get(method)) for run in runs]
        summary[method] = {key: {"mean": float(np.mean([s[key] for s in per_seed])),
                                 "std": float(np.std([s[key] for s in per_seed])),
                                 "per_seed": [s[key] for s in per_seed]} for key in per_seed[0]}
    return summary


def zonal_rmse(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each method's RMSE per latitude row over every seed and cycle: where on the globe the errors are."""
    return {method: np.sqrt(np.mean([profile for run in runs for profile in run[method].zonal_mse], axis=0)).tolist()
            for method in METHODS}


def goals(report: dict[str, Any]) -> list[tuple[str, bool, str]]:
    methods = report["methods"]
    value = {method: {key: methods[method][key]["mean"] for key in methods[method]} for method in methods}
    gen, oi, free, letkf = value["generative"], value["oi"], value["free"], value["letkf"]
    minutes = report["wall_seconds"] / 60
    return [
        ("RMSE ≤ 0.7 × OI's", gen["rmse"] <= 0.7 * oi["rmse"], f"{gen['rmse'] / oi['rmse']:.2f} ×"),
        ("RMSE ≤ 0.5 × the free-running ensemble's", gen["rmse"] <= 0.5 * free["rmse"],
         f"{gen['rmse'] / free['rmse']:.2f} ×"),
        ("spread-skill ratio in [0.7, 1.3]", 0.7 <= gen["spread_skill"] <= 1.3, f"{gen['spread_skill']:.2f}"),
        ("CRPS ≤ OI's", gen["crps"] <= oi["crps"], f"{gen['crps']:.1f} m vs {oi['crps']:.1f} m"),
        ("the whole twin run in under 15 minutes", minutes < 15, f"{minutes:.1f} min"),
        ("moonshot: RMSE ≤ the tuned LETKF's", gen["rmse"] <= letkf["rmse"],
         f"{gen['rmse']:.1f} m vs {letkf['rmse']:.1f} m"),
    ]


def worst_rows(report: dict[str, Any]) -> str:
    worst = []
    for method in ANALYSES:
        profile = report["zonal_rmse"][method]
        row = int(np.argmax(profile))
        worst.append(f"{method} {profile[row]:.1f} m at {latitude_label(report['latitudes'][row])}")
    return "; ".join(worst)


def latitude_label(degrees: float) -> str:
    return f"{abs(degrees):g}° {'N' if degrees > 0 else 'S'}" if degrees else "the equator"


def sampler_line(sampler: dict[str, Any]) -> str:
    """The report's account of the prior and sampler that ran (`DiffusionConfig` as a dict)."""
    return (
        f"Sampler: {sampler['prediction']} denoiser"
        + (f" added to the exact denoiser of the training windows' zonally stationary, mirror-symmetric Gaussian "
           f"(tapered at {sampler['gaussian_taper_km']:g} km)" if sampler["gaussian_base"] else "")
        + f", {sampler['steps']} steps, "
        + (f"{sampler['corrections']} corrector(s) at τ = {sampler['tau']:g}, " if sampler["corrections"] else
           "no corrector, ")
        + f"{sampler['guidance']} guidance"
        + (f" ({sampler['cg_steps']} CG step(s))" if sampler["guidance"] == "mmps" else f" (γ = {sampler['gamma']:g})")
        + (" through the Gaussian base's Jacobian" if sampler["guidance_jacobian"] == "gaussian_base" else "") + "."
        + (f" Started at t = {sampler['start_time']:g} from window OI's analysis of every frame, noised to it."
           if sampler["start_time"] < 1 else "")
        + (" The state rolled by a random number of longitudes at each denoiser call." if sampler["random_shift"] else "")
        + (f" Analyses projected onto spherical harmonics of degree below {sampler['spectral_truncation']}."
           if sampler["spectral_truncation"] else ""))


def twin_markdown(report: dict[str, Any]) -> str:
    s, tuned, tuning = report["settings"], report["tuned"], report["tuning_rmse"]

    def listed(rmse: dict[str, float]) -> str:
        return ", ".join(f"{choice}: {value:.1f} m" for choice, value in rmse.items())

    lines = [
        "# Twin experiment: generative data assimilation",
        "",
        f"Truth: {s['seeds']} shallow-water run(s) the model never saw, {s['grid'][0]} × {s['grid'][1]} grid; "
        f"{s['stations']} stations ({s['fraction']:.0%} of grid points) observe Z500 every 6 h with σ_o = "
        f"{s['error_std_m']:.1f} m ({s['noise']:g} × the anomaly std); {s['cycles']} scored cycles after a burn-in of "
        f"{s['burn_in']}; {s['mode']} mode, windows of {s['window']} frames; {s['members']} members; checkpoint "
        f"{s['checkpoint']} (step {s['step']}); {report['wall_seconds'] / 60:.1f} min in all"
        + (f" ({report['reused_seconds'] / 60:.1f} of them in an interrupted run whose experiments this one reused)."
           if report["reused_seconds"] else "."),
        "",
        sampler_line(s["sampler"]),
        "",
        f"Baselines: LETKF (Gaspari–Cohn localisation over great-circle distance; its local analysis is DAPPER's "
        f"square-root EnKF's, tested) and DAPPER's square-root EnKF (global), N = {s['filter_members']}, both cycling "
        "with the truth's own shallow-water model from a climatological ensemble (a perfect model); free: that "
        "ensemble without analyses; OI on the climatological mean with the training split's covariance; window OI "
        "the same of every observation in the generative window, with the training windows' covariance (the "
        "generative method with a Gaussian prior).",
        "",
        f"Tuned on a separate truth ({s['tuning_cycles']} cycles after the same burn-in), analysis RMSE: OI half-width "
        f"{listed(tuning['oi'])} → {tuned['oi_half_width_km']:g} km; window OI half-width "
        f"{listed(tuning['window_oi'])} → {tuned['window_oi_half_width_km']:g} km; LETKF half-width and inflation "
        f"{listed(tuning['letkf'])} → {tuned['letkf_half_width_km']:g} km, {tuned['letkf_inflation']:g}; EnKF "
        f"inflation {listed(tuning['enkf'])} → {tuned['enkf_inflation']:g}.",
        "",
        "| method | RMSE (m) | spread (m) | spread/skill | CRPS (m) |",
        "|---|---|---|---|---|",
    ]
    for method, values in report["methods"].items():
        cells = [f"{values[key]['mean']:.1f} ± {values[key]['std']:.1f}" if key != "spread_skill"
                 else f"{values[key]['mean']:.2f} ± {values[key]['std']:.2f}" for key in ("rmse", "spread", "spread_skill", "crps")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Mean ± std over seeds; latitude-weighted; spread-skill with the √((N+1)/N) correction for "
              "ensembles; OI, window OI and climatology are Gaussian (their CRPS in closed form).", "",
              "Each analysis's worst latitude row (RMSE over every cycle and seed; the area weighting above all but "
              "hides a pole row, which weighs 0.4 % of a mean row): " + worst_rows(report) + ".", "",
              "How the sampled states move and how rough they are, beside the truth's (mean over seeds): the rms "
              "6-hour change within a window (the generative one over its sampled windows) and the rms difference "
              "between zonal neighbours (its analyses).", "",
              "| | 6 h change (m) | zonal neighbour difference (m) |", "|---|---|---|"]
    lines += [f"| {source} | {values['tendency']:.1f} | {values['roughness']:.1f} |"
              for source, values in report["texture"].items()]
    lines += ["", "## Goals", ""]
    lines += [f"- {name}: {'met' if met else 'not met'} ({detail})" for name, met, detail in goals(report)]
    lines += ["", "![RMSE by cycle](twin_rmse.png)", "", "![analysis](twin_maps.png)", ""]
    return "\n".join(lines)


def plot_twin(run: dict[str, Any], report: dict[str, Any], lat: np.ndarray, lon: np.ndarray, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from megageo.io.atomic import atomic_path

    figure, (curves, zonal, ranks) = plt.subplots(1, 3, figsize=(16, 3.8), layout="constrained")
    for method in METHODS:
        curves.plot(run[method].rmse, label=method)
        if method in ANALYSES:  # the free run, the prior and climatology are ~150 m everywhere
            zonal.plot(lat, report["zonal_rmse"][method], label=method)
    # Logarithmic: the analyses' ~10 m and the free run's ~200 m on one linear axis leave the analyses a flat line.
    curves.set(xlabel="cycle (6 h)", ylabel="lat-weighted RMSE (m)", title="analysis error, seed 0", yscale="log")
    zonal.set(xlabel="latitude", ylabel="RMSE (m)", title="analysis error by latitude, every cycle", yscale="log")
    figure.legend(*curves.get_legend_handles_labels(), loc="outside right center", fontsize="small")
    histogram = report["rank_histogram"]
    ranks.bar(range(len(histogram)), histogram)
    ranks.set(xlabel="rank of the truth among the members", ylabel="count", title="generative rank histogram")
    with atomic_path(out_dir / "twin_rmse.png") as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
    truth, analysis, stations = run["truth_example"]
    station_lon, station_lat = lon[stations % len(lon)], lat[stations // len(lon)]
    figure, axes = plt.subplots(1, 3, figsize=(16, 3.6), layout="constrained")
    limits = dict(vmin=float(truth.min()), vmax=float(truth.max()))
    for axis, field, title in ((axes[0], truth, "truth"), (axes[1], analysis, "generative analysis mean")):
        image = axis.pcolormesh(lon, lat, field, shading="nearest", **limits)
        axis.set(title=f"{title}, last cycle", xlabel="lon", ylabel="lat")
    axes[0].scatter(station_lon, station_lat, s=1, c="k")
    figure.colorbar(image, ax=axes[:2], label="Z500 (m)")
    # The error beside the stations shows where the analysis is unconstrained: between them, not at them.
    error = analysis - truth
    reach = float(np.abs(error).max())
    image = axes[2].pcolormesh(lon, lat, error, shading="nearest", cmap="RdBu_r", vmin=-reach, vmax=reach)
    axes[2].scatter(station_lon, station_lat, s=0.5, c="k")
    axes[2].set(title="analysis mean − truth, stations", xlabel="lon", ylabel="lat")
    figure.colorbar(image, ax=axes[2], label="error (m)")
    with atomic_path(out_dir / "twin_maps.png") as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
