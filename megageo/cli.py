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

from megageo.errors import MegageoError, report

COMMAND_MODULES = (
    "megageo.data.commands",
    "megageo.model.commands",
    "megageo.train.commands",
    "megageo.eval.commands",
    "megageo.bench.commands",
    "megageo.plan.commands",
    "megageo.convert.commands",
    "megageo.da.commands",
    "megageo.demo",
)


LOCAL_RANK_FLAGS = ("--local_rank", "--local-rank")
"""What the deepspeed launcher (unless told --no_local_rank) and torch.distributed.launch append to every rank's
command line, right after the script: `megageo --local_rank=0 train ...`."""

QUIET_WARNINGS = (
    "Transformer Engine and Apex are not installed",  # Megatron-core on CPU: its local fallbacks are what we use
    "Triton is not supported on current platform",  # fla on CPU: megageo's own kernels run there
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="megageo",
        description="Train and evaluate long-context forecasters of atmospheric fields (Z500 from NCEP/NCAR "
        "Reanalysis 1) with six interchangeable sequence mixers, from a laptop CPU to many GPU nodes.",
        epilog="The --local_rank=N (or --local-rank=N) that launchers append is accepted anywhere on the command "
        "line; ranks are read from the launcher's environment.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def take_local_rank(argv: list[str]) -> list[str]:
    """`argv` without the launcher's `--local_rank=N` / `--local-rank=N` (or `--local_rank N`), wherever it stands
    before a `--`. The rank it names must agree with LOCAL_RANK when the environment has one; otherwise it becomes
    LOCAL_RANK (launchers that pass only the flag), so rank discovery reads one source."""
    kept, ranks = [], []
    tokens = iter(argv)
    for token in tokens:
        flag, equals, value = token.partition("=")
        if token == "--":
            kept += [token, *tokens]
        elif flag in LOCAL_RANK_FLAGS:
            value = value if equals else next(tokens, "")
            if not value.isdigit():
                raise MegageoError(f"{flag} must be a non-negative integer (the launcher's local rank), got {value!r}")
            ranks.append(int(value))
        else:
            kept.append(token)
    if not ranks:
        return kept
    environment = os.environ.get("LOCAL_RANK")
    if len(set(ranks)) > 1:
        raise MegageoError(f"--local_rank given several times with different values: {ranks}")
    if environment is not None and environment.strip() != str(ranks[0]):
        raise MegageoError(f"--local_rank={ranks[0]} disagrees with LOCAL_RANK={environment} in the environment")
    os.environ["LOCAL_RANK"] = str(ranks[0])
    return kept


def main(argv: list[str] | None = None) -> int:
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    os.environ["PYTHONWARNINGS"] = ",".join(f"ignore:{message}" for message in QUIET_WARNINGS)  # spawned workers
    try:
        argv = take_local_rank(sys.argv[1:] if argv is None else list(argv))
    except MegageoError as error:
        return report(error)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MegageoError as error:
        return report(error)


if __name__ == "__main__":
    sys.exit(main())
