"""`megageo da ...`: generative data assimilation with a `task: diffusion` checkpoint. Importing this module (as
the CLI does for its parser) registers the diffusion task with training, at no cost: the task is a path."""

from __future__ import annotations

import argparse
from pathlib import Path

from megageo.config import SAMPLER_KEYS
from megageo.train.tasks import register_task

register_task("diffusion", "megageo.da.task:DiffusionTask")


def run_assimilate(args: argparse.Namespace) -> int:
    from megageo.da.analysis import assimilate

    path = assimilate(args.checkpoint, args.obs, args.out, args.members, args.time, args.mode, args.store, args.seed,
                      overrides=tuple(args.overrides))
    print(f"analysis ensemble written to {path}")
    return 0


def run_twin(args: argparse.Namespace) -> int:
    from megageo.da.twin import TwinSettings, run_twin_experiment

    settings = TwinSettings(cycles=args.cycles, burn_in=args.burn_in, seeds=args.seeds, members=args.members,
                            fraction=args.fraction, noise=args.noise, mode=args.mode,
                            filter_members=args.filter_members, tuning_cycles=args.tuning_cycles,
                            workers=args.workers)
    report = run_twin_experiment(args.checkpoint, Path(args.out), settings, args.store, tuple(args.overrides))
    print(f"twin experiment report written to {report}")
    return 0


def add_sampler_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="diffusion.KEY=VALUE",
                        help=f"override the checkpoint's sampler setting ({', '.join(SAMPLER_KEYS)}); repeatable")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("da", help="generative data assimilation (a diffusion prior sampled with observations)",
                                   description="Generative data assimilation with a `task: diffusion` checkpoint "
                                   "(train one with `megageo train --config configs/tiny/diffusion.yaml`).")
    commands = parser.add_subparsers(dest="da_command", metavar="COMMAND", required=True)
    assimilate = commands.add_parser(
        "assimilate", help="sample an analysis ensemble of one window given observations",
        description="Sample the posterior of a window of frames given observations (netCDF layout: see "
        "megageo/da/observations.py) and write the ensemble, its mean and spread as CF netCDF.")
    assimilate.add_argument("checkpoint", help="run directory, checkpoints folder, tag folder or release")
    assimilate.add_argument("--obs", required=True, help="observation netCDF (time, lat, lon, value, error_std)")
    assimilate.add_argument("--out", required=True, help="analysis netCDF to write")
    assimilate.add_argument("--members", type=int, default=None, help="ensemble size (default: diffusion.members)")
    assimilate.add_argument("--time", default=None, help="analysis time, e.g. 1979-03-01T00 (default: the last "
                            "observation's)")
    assimilate.add_argument("--mode", default="filter", choices=("filter", "smooth"),
                            help="filter: the window ends at the analysis time; smooth: it is centred on it")
    assimilate.add_argument("--store", default=None, help="store giving the grid (default: the training store)")
    assimilate.add_argument("--seed", type=int, default=0)
    add_sampler_overrides(assimilate)
    assimilate.set_defaults(func=run_assimilate)

    twin = commands.add_parser(
        "twin", help="twin experiment: a hidden truth, sparse observations, the generative analysis against baselines",
        description="Run a shallow-water truth the model never saw, observe a fixed random fraction of its grid points "
        "(10% by default) every 6 h, assimilate with the checkpoint and with the baselines (LETKF, EnKF, OI, "
        "window OI, the free-running ensemble, climatology), and write report.md, twin.json and figures.")
    twin.add_argument("checkpoint")
    twin.add_argument("--out", required=True, help="folder for the report")
    twin.add_argument("--cycles", type=int, default=100, help="scored analysis cycles (6-hourly)")
    twin.add_argument("--burn-in", type=int, default=8,
                      help="cycles run before scoring starts (the filters spin up from a climatological ensemble)")
    twin.add_argument("--seeds", type=int, default=3, help="independent truths (and station sets)")
    twin.add_argument("--members", type=int, default=None, help="ensemble size (default: diffusion.members)")
    twin.add_argument("--fraction", type=float, default=0.1, help="fraction of grid points observed")
    twin.add_argument("--noise", type=float, default=0.1,
                      help="observation error std as a fraction of the field's anomaly std")
    twin.add_argument("--mode", default="filter", choices=("filter", "smooth"))
    twin.add_argument("--filter-members", type=int, default=20, help="LETKF, EnKF and free-run ensemble size")
    twin.add_argument("--tuning-cycles", type=int, default=None,
                      help="scored cycles of the separate truth that tune the localisations and inflations "
                           "(default: --cycles; a shorter run favours inflations that diverge later)")
    twin.add_argument("--workers", type=int, default=None,
                      help="processes running the LETKF, EnKF and free runs side by side, one thread each "
                           "(default: one per usable core; 1: in this process)")
    twin.add_argument("--store", default=None, help="store giving the grid and climatology (default: training's)")
    add_sampler_overrides(twin)
    twin.set_defaults(func=run_twin)
