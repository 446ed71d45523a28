"""`megageo ...`: one command line over data, model, training, evaluation, benchmarks and conversion.

Each sub-package contributes its subcommands through `register(subparsers)` in its `commands.py`, and
imports its heavy dependencies (torch, deepspeed, h5py) only inside the handlers so that `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from megageo.errors import MegageoError

COMMAND_MODULES = (
    "megageo.data.commands",
    "megageo.model.commands",
    "megageo.train.commands",
    "megageo.eval.commands",
    "megageo.bench.commands",
    "megageo.plan.commands",
    "megageo.convert.commands",
    "megageo.demo",
)


QUIET_WARNINGS = (
    "Transformer Engine and Apex are not installed",  # Megatron-core on CPU: its local fallbacks are what we use
    "Triton is not supported on current platform",  # fla on CPU: megageo's own kernels run there
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="megageo",
        description="Train and evaluate long-context forecasters of atmospheric fields (Z500 from NCEP/NCAR "
        "Reanalysis 1) with six interchangeable sequence mixers, from a laptop CPU to many GPU nodes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    os.environ["PYTHONWARNINGS"] = ",".join(f"ignore:{message}" for message in QUIET_WARNINGS)  # spawned workers
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MegageoError as error:
        print(f"megageo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
