"""`megageo bench ...`: timing benchmarks, one sub-subcommand each (`kernels`; `models` is planned).

A benchmark adds itself with a `_register_<name>(benchmarks)` function listed in `register`; its handler takes the
parsed arguments, imports torch and the code under test itself (so `--help` stays instant) and returns an exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_KERNEL_OPS = ("gla", "delta_rule", "gated_delta_rule", "kda", "ssd", "attention")


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="timing benchmarks", description="Time megageo's kernels and models on this machine."
    )
    benchmarks = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    _register_kernels(benchmarks)


def _register_kernels(benchmarks: argparse._SubParsersAction) -> None:
    kernels = benchmarks.add_parser(
        "kernels", help="chunked CPU kernels vs naive recurrences and softmax attention",
        description="Forward+backward seconds (fp32, CPU) of megageo's chunked kernels for GLA, the delta rule, "
        "the gated delta rule, KDA and Mamba2's SSD, next to fla's naive step-by-step recurrences, Megatron-core's "
        "torch_chunk_gated_delta_rule, transformers' mamba2_chunk_scan and PyTorch's causal softmax attention. "
        "The naive recurrences take minutes beyond a few thousand steps: --naive-max-len skips them above a length.",
    )
    kernels.add_argument("--lengths", type=_comma_separated_ints, default=(1024, 4096, 16384),
                         metavar="T,T,...", help="sequence lengths (default: 1024,4096,16384)")
    kernels.add_argument("--naive-max-len", type=int, default=4096, metavar="T",
                         help="skip the naive recurrences above this length (default: 4096)")
    kernels.add_argument("--ops", nargs="+", default=DEFAULT_KERNEL_OPS, metavar="OP",
                         help=f"ops to time (default: {' '.join(DEFAULT_KERNEL_OPS)})")
    kernels.add_argument("--batch", type=int, default=1, help="batch size B (default: 1)")
    kernels.add_argument("--heads", type=int, default=4, help="heads H (default: 4)")
    kernels.add_argument("--head-dim", type=int, default=64, help="key/value dimension per head D (default: 64)")
    kernels.add_argument("--threads", type=int, default=1,
                         help="torch CPU threads (default: 1; on a shared machine, threads waiting on each other "
                         "dominate the many small matrix products of every kernel and make timings meaningless)")
    kernels.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the timings as JSON")
    kernels.set_defaults(func=_run_kernels)


def _run_kernels(args: argparse.Namespace) -> int:
    from megageo.bench import kernels

    return kernels.main(
        args.ops, args.lengths, args.naive_max_len, args.batch, args.heads, args.head_dim, args.threads, args.json
    )


def _comma_separated_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
