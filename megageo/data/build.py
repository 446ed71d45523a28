"""`build_store`: netCDF files -> one HDF5 store, checked up front, streamed file by file, renamed atomically.

Every file's metadata is checked (grid, levels, time order) before the store is created, so most bad inputs
fail before anything is written; data errors found while streaming (NaN, fill values, truncation) delete the
temporary file. The target path only ever holds a complete store.

Several variables (`hgt uwnd vwnd air`, each from its own yearly files as NCEP has them, or together in one file)
become channels in variable-major order, (hgt 500, hgt 850, uwnd 500, ...); each variable's files must agree with
the first variable's on every time and on the grid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from megageo.data.ncep import TIME_UNITS, NcSource, iter_frames, scan_kinds
from megageo.data.store import is_gap
from megageo.data.variables import VARIABLES
from megageo.data.variables import variable as registered
from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path


def expand_sources(sources: Sequence[str | Path], kinds: Sequence[str] = ("hgt",)) -> list[Path]:
    """Files as given; a directory stands for the *.nc files inside it, less NCEP-named files of variables not
    asked for (`uwnd.1979.nc` beside `hgt.1979.nc` in a height-only build)."""
    others = set(VARIABLES) - set(kinds)
    paths = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(path for path in source.glob("*.nc") if path.name.split(".")[0] not in others)
            if not found:
                raise MegageoError(f"{source}: directory holds no .nc files")
            paths += found
        elif source.exists() or source.is_symlink():  # a broken link is reported by why it cannot be read
            paths.append(source)
        else:
            raise MegageoError(f"{source}: no such file or directory")
    if not paths:
        raise MegageoError("no source files given")
    return paths


def _describe(source: NcSource, index: int) -> str:
    import cftime

    return f"{source.path.name} ({cftime.num2date(source.time[index], TIME_UNITS, source.calendar)})"


def order_in_time(files: list[NcSource], allow_gaps: bool = False) -> list[NcSource]:
    """Files sorted by first time; raises on empty files, unsorted or repeated times within a file, overlaps
    or duplicates between files, mixed calendars, and (unless `allow_gaps`) gaps between files.

    A gap is a jump between files that `is_gap` calls one against the median step. Allowed, gaps stay in the
    store's time axis, and no training window spans one (`Store.gaps`).
    """
    for source in files:
        if source.time.size == 0:
            raise MegageoError(f"{source.path}: no time steps")
        steps = np.diff(source.time)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise MegageoError(f"{source.path}: time not increasing at index {i}: {_describe(source, i)}")
    files = sorted(files, key=lambda source: source.time[0])
    calendars = {source.calendar for source in files}
    if len(calendars) > 1:
        raise MegageoError(f"files mix calendars {sorted(calendars)}")
    median_step = np.median(np.diff(np.concatenate([source.time for source in files]))) if len(files) > 1 else 0
    for before, after in zip(files, files[1:]):
        jump = after.time[0] - before.time[-1]
        if jump <= 0:
            raise MegageoError(
                f"duplicate or overlapping times: {after.path.name} starts at {_describe(after, 0)}, "
                f"{before.path.name} ends at {_describe(before, -1)}"
            )
        if is_gap(jump, median_step) and not allow_gaps:
            raise MegageoError(
                f"gap between {_describe(before, -1)} and {_describe(after, 0)}: {jump:g} h, "
                f"expected about {median_step:g} h (--allow-gaps keeps it)"
            )
    return files


def check_same_times(by_kind: dict[str, list[NcSource]]) -> None:
    """Every variable's files cover the first variable's times exactly; else one line saying where they part."""
    (first, reference), *others = by_kind.items()
    times = np.concatenate([source.time for source in reference])
    for kind, files in others:
        mine = np.concatenate([source.time for source in files])
        if mine.shape == times.shape and np.allclose(mine, times, rtol=0, atol=1e-3):
            continue
        common = min(mine.size, times.size)
        apart = np.flatnonzero(~np.isclose(mine[:common], times[:common], rtol=0, atol=1e-3))
        index = int(apart[0]) if apart.size else common
        raise MegageoError(f"{kind} and {first} differ in time: {_at(files, index)} against {_at(reference, index)} "
                           f"({mine.size} and {times.size} frames in all)")


def _at(files: list[NcSource], index: int) -> str:
    """Frame `index` of the concatenated files, described by file and date ('ends' past the last)."""
    for source in files:
        if index < source.time.size:
            return _describe(source, index)
        index -= source.time.size
    return f"{files[-1].path.name} ends"


def check_grids(files: list[NcSource], levels: Sequence[float]) -> None:
    """All files share the first one's grid and hold every requested level."""
    first = files[0]
    for source in files:
        for name in ("lat", "lon"):
            mine, theirs = getattr(source, name), getattr(first, name)
            if mine.shape != theirs.shape or not np.allclose(mine, theirs, atol=1e-4):
                raise MegageoError(
                    f"{source.path.name}: {name} grid ({mine.size} points, {mine[0]:g}..{mine[-1]:g}) differs from "
                    f"{first.path.name} ({theirs.size} points, {theirs[0]:g}..{theirs[-1]:g})"
                )
        for level in levels:
            source.level_index(level)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Moments:
    """Per-channel mean and variance accumulated block by block (Chan et al.'s parallel update), in float64,
    so the statistics of a multi-year split never need the whole split in memory."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)

    def add(self, block: np.ndarray) -> None:
        values = block.astype(np.float64).transpose(1, 0, 2, 3).reshape(block.shape[1], -1)
        n = values.shape[1]
        if n == 0:
            return
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.count)


def _write(h5, by_kind: dict[str, list[NcSource]], levels: Sequence[float], train_end: int,
           progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Stream every variable's files into its channels; returns the per-channel mean and std of the training split."""
    from tqdm import tqdm

    first = next(iter(by_kind.values()))
    total = sum(source.time.size for source in first)
    shape = (total, len(by_kind) * len(levels), first[0].lat.size, first[0].lon.size)
    frames = h5.create_dataset("frames", shape=shape, dtype="float32", chunks=(1, *shape[1:]))
    means, stds = [], []
    with tqdm(total=total * len(by_kind), unit="frame", desc="build", disable=not progress) as bar:
        for position, files in enumerate(by_kind.values()):
            channels = slice(position * len(levels), (position + 1) * len(levels))
            moments, start = Moments(len(levels)), 0
            for source in files:
                for block in iter_frames(source, levels):
                    frames[start : start + len(block), channels] = block
                    moments.add(block[: max(0, train_end - start)])
                    start += len(block)
                    bar.update(len(block))
            means.append(moments.mean)
            stds.append(moments.std)
    return np.concatenate(means), np.concatenate(stds)


def build_store(
    sources: Sequence[str | Path],
    out: str | Path,
    levels: Sequence[float] = (500,),
    train_fraction: float = 0.9,
    progress: bool = False,
    variable: str | None = None,
    variables: Sequence[str] = ("hgt",),
    allow_gaps: bool = False,
) -> Path:
    """Build the HDF5 store at `out` from netCDF files (or directories of them); see megageo.data.store.
    `variables` are NCEP names (`megageo.data.variables`); `variable` names the one variable of a single-variable
    build in the files, where metadata and conventional names cannot tell. `allow_gaps` keeps gaps between
    files (separate runs, a missing year) instead of refusing them."""
    import h5py

    out = Path(out)
    if not 0 < train_fraction <= 1:
        raise MegageoError(f"train_fraction must be in (0, 1], got {train_fraction}")
    if not levels:
        raise MegageoError("no levels requested")
    if not out.parent.is_dir():
        raise MegageoError(f"{out.parent}: output directory does not exist")
    kinds = [registered(name).name for name in variables]
    if not kinds or len(set(kinds)) != len(kinds):
        raise MegageoError(f"variables must be distinct and at least one, got {list(variables)}")
    if variable is not None and len(kinds) > 1:
        raise MegageoError(f"--var names the variable of a single-variable build, not of {len(kinds)} variables")
    by_kind: dict[str, list[NcSource]] = {kind: [] for kind in kinds}
    for path in expand_sources(sources, kinds):
        for kind, source in scan_kinds(path, kinds, variable).items():
            by_kind[kind].append(source)
    absent = [kind for kind, files in by_kind.items() if not files]
    if absent:
        raise MegageoError(f"no source file holds {', '.join(absent)} (asked for {', '.join(kinds)})")
    by_kind = {kind: order_in_time(files, allow_gaps) for kind, files in by_kind.items()}
    every = [source for files in by_kind.values() for source in files]
    check_grids(every, levels)
    check_same_times(by_kind)
    files = by_kind[kinds[0]]
    total = sum(source.time.size for source in files)
    train_end = int(total * train_fraction)
    if train_end == 0:
        raise MegageoError(f"train_fraction {train_fraction} of {total} frames leaves no training frames")

    with atomic_path(out, writer_errors=(RuntimeError,)) as temporary:
        with h5py.File(temporary, "w") as h5:
            mean, std = _write(h5, by_kind, levels, train_end, progress)
            time = h5.create_dataset("time", data=np.concatenate([source.time for source in files]))
            time.attrs.update(units=TIME_UNITS, calendar=files[0].calendar)
            channels = [(kind, level) for kind in kinds for level in levels]
            h5.create_dataset("level", data=np.asarray([level for _, level in channels], dtype=np.float64))
            h5["level"].attrs["units"] = "hPa"
            h5.create_dataset("variable", data=[kind for kind, _ in channels], dtype=h5py.string_dtype())
            h5.create_dataset("units", data=[registered(kind).units for kind, _ in channels],
                              dtype=h5py.string_dtype())
            h5.create_dataset("lat", data=files[0].lat).attrs["units"] = "degrees_north"
            h5.create_dataset("lon", data=files[0].lon).attrs["units"] = "degrees_east"
            h5.create_dataset("mean", data=mean)
            h5.create_dataset("std", data=std)
            unique = {source.path: source for source in every}  # a file holding several variables is one source
            provenance = [
                {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256(path), "frames": source.time.size}
                for path, source in unique.items()
            ]
            h5.attrs.update(
                train_end=train_end,
                train_fraction=train_fraction,
                sources=json.dumps(provenance),
                created_by="megageo data build",
            )
    return out
