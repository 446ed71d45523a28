"""`megageo train`: train a forecaster with the layout of its config, under any launcher."""

from __future__ import annotations

import argparse

from megageo.config import DEFAULT_CONFIG
from megageo.errors import MegageoError, report


def run_train(args: argparse.Namespace) -> int:
    from megageo.config import load_config

    config = load_config(args.config, args.set)
    from megageo.parallel import groups
    from megageo.train.loop import train

    try:
        train(config, resume=args.resume, stop_at=args.stop_at)
    except MegageoError as error:  # said before the shutdown: a launcher stops the other ranks once one exits
        return report(error)
    finally:
        groups.shutdown()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a forecaster or a diffusion prior (any TP/PP/DP/CP layout; torchrun, deepspeed, mpirun "
                      "or PBS)",
        description="Train the config's task: a forecaster (task: forecast) or the score-based prior of `megageo da` "
                    "(task: diffusion). Ranks come from the launcher's environment; a plain call is one process.",
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="YAML config (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set parallel.tensor_parallel=2 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    parser.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                        help="leave after this step with a checkpoint, as a preempted job would")
    parser.set_defaults(func=run_train)
