"""`megageo data synth | build | inspect`. Heavy imports live inside the handlers so `--help` stays instant."""

from __future__ import annotations

import argparse

from megageo.errors import MegageoError


def run_synth(args: argparse.Namespace) -> int:
    from megageo.data.synth import synthesize

    for path in synthesize(args.out, args.days, args.seed, args.levels, args.start, args.spinup_days,
                            runs=args.runs):
        print(path)
    return 0


def run_build(args: argparse.Namespace) -> int:
    from megageo.data.build import build_store
    from megageo.data.store import Store

    levels = [_number(level, "--levels") for level in _items(args.levels)]
    variables = _items(args.vars)
    out = build_store(args.src, args.out, levels, args.train_fraction, progress=True, variable=args.var,
                      variables=variables, allow_gaps=args.allow_gaps)
    print(Store(out).summary())
    return 0


def _items(values: list[str]) -> list[str]:
    """Values given space- or comma-separated (`500 850` or `500,850`), as users of both habits type them."""
    return [item for value in values for item in value.split(",") if item]


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MegageoError(f"{flag}: '{text}' is not a number") from None


def run_inspect(args: argparse.Namespace) -> int:
    from megageo.data.store import Store

    print(Store(args.store).summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="make synthetic reanalysis, build and inspect HDF5 stores",
        description="Turn NCEP/NCAR Reanalysis 1 (or synthetic) netCDF files into the HDF5 store that training reads.",
    )
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = actions.add_parser(
        "synth",
        help="write synthetic NCEP-layout hgt/uwnd/vwnd.YYYY.nc files from a shallow-water model",
        description="Run a shallow-water model on the sphere (NCEP's 73x144 grid) from a balanced random start and "
        "write 6-hourly geopotential height with Z500-like statistics (mean 5510 m, std 343 m) and the model's "
        "winds as NCEP-layout yearly files hgt.YYYY.nc, uwnd.YYYY.nc and vwnd.YYYY.nc, ready for `megageo data "
        "build`. About 1.5 s of CPU per model day.",
    )
    synth.add_argument("--out", required=True, help="directory for the hgt.YYYY.nc files (created if missing)")
    synth.add_argument("--days", type=float, required=True, help="model days to record (4 frames a day)")
    synth.add_argument("--seed", type=int, default=0, help="random seed of the initial vortices (default 0)")
    synth.add_argument("--levels", type=int, nargs="+", default=[500], help="pressure levels in hPa (default 500)")
    synth.add_argument("--start", default="1979-01-01", help="date of the first frame, YYYY-MM-DD (default 1979-01-01)")
    synth.add_argument(
        "--spinup-days", type=float, default=3.0, help="model days run and discarded before recording (default 3)"
    )
    synth.add_argument(
        "--runs", type=int, default=1,
        help="separate runs from seeds S, S+1, ..., each in later years (default 1); each start keeps its own zonal "
        "flow, so many runs hold many climates: build them with --allow-gaps",
    )
    synth.set_defaults(func=run_synth)

    build = actions.add_parser(
        "build",
        help="build an HDF5 store from netCDF files",
        description="Read geopotential height (and, with --vars, winds and temperature) from netCDF files (NCEP R1 "
        "hgt.YYYY.nc, uwnd.YYYY.nc, ..., float32 or packed int16, or any CF file with geopotential_height / "
        "geopotential, eastward_wind, northward_wind, air_temperature), concatenate them in time order, and write "
        "frames[T, C, H, W] (channels: each variable at each level) with coordinates, per-channel mean/std of the "
        "training split, and provenance. Every variable's files must agree on time and grid. Bad input stops with "
        "a one-line error and leaves no file.",
    )
    build.add_argument("--src", nargs="+", required=True, help="netCDF files, or directories of *.nc files")
    build.add_argument("--out", required=True, help="the store to write, e.g. data/z500.h5")
    build.add_argument("--levels", nargs="+", default=["500"],
                       help="pressure levels in hPa, e.g. 500 850 or 500,850 (default 500)")
    build.add_argument("--vars", nargs="+", default=["hgt"],
                       help="NCEP names of the variables, e.g. hgt,uwnd,vwnd,air (default hgt)")
    build.add_argument(
        "--train-fraction",
        type=float,
        default=0.9,
        help="leading fraction of frames in the training split, which alone sets mean/std (default 0.9)",
    )
    build.add_argument("--var", default=None, metavar="NAME",
                       help="the geopotential(-height) variable, where its metadata and name do not tell (e.g. hgt)")
    build.add_argument("--allow-gaps", action="store_true",
                       help="keep gaps between files (separate runs, a missing year) instead of refusing them; "
                       "no training window spans a gap")
    build.set_defaults(func=run_build)

    inspect = actions.add_parser(
        "inspect",
        help="print a store's shape, time axis, grid, levels, statistics, split and sources",
        description="Print a readable summary of an HDF5 store written by `megageo data build`.",
    )
    inspect.add_argument("store", help="path of the .h5 store")
    inspect.set_defaults(func=run_inspect)
