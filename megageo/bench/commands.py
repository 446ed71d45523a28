"""`megageo bench ...`: timing benchmarks, one sub-subcommand each (`kernels`, `models`).

A benchmark adds itself with a `_register_<name>(benchmarks)` function listed in `register`; its handler takes the
parsed arguments, imports torch and the code under test itself (so `--help` stays instant) and returns an exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BENCH_MIXERS = ("transformer", "gla", "deltanet", "gated_deltanet", "kda", "mamba2")
DEFAULT_KERNEL_OPS = ("gla", "delta_rule", "gated_delta_rule", "kda", "ssd", "attention")


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench", help="timing benchmarks", description="Time megageo's kernels and models on this machine."
    )
    benchmarks = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    _register_kernels(benchmarks)
    _register_models(benchmarks)
    _register_context(benchmarks)


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


def _register_models(benchmarks: argparse._SubParsersAction) -> None:
    models = benchmarks.add_parser(
        "models", help="forecaster throughput, TFLOPS, memory and latency vs sequence length",
        description="Train-step throughput (frames/s), achieved TFLOPS (analytic FLOPs), peak memory and inference "
        "latency of whole forecasters, several mixers side by side over sequence lengths (the seed paper's Fig. 6). "
        "Each measurement runs in its own process; one that does not fit is reported as oom. Every case is measured "
        "--rounds times, rounds interleaved, and each ratio to the Transformer is printed with its range over the "
        "rounds, so a busy machine shows as spread instead of a wrong number. Writes bench.json and bench.png to "
        "--out. --profile prints where one step's time goes instead. On CPU use the tiny configs; on a GPU the 340M "
        "ones (bf16).",
    )
    models.add_argument("--configs", nargs="+", default=[f"configs/tiny/{name}.yaml" for name in BENCH_MIXERS],
                        metavar="CFG", help="model configs, one per mixer (default: the six tiny configs)")
    models.add_argument("--seq-lens", type=_comma_separated_ints, default=(16, 128, 1024, 16384), metavar="T,T,...",
                        help="input sequence lengths in frames (default: 16,128,1024,16384)")
    models.add_argument("--batch-size", type=int, default=1, help="samples per step (default: 1)")
    models.add_argument("--frame", default="1,73,144", metavar="C,H,W", help="frame shape (default: 1,73,144)")
    models.add_argument("--steps", type=int, default=3, help="timed steps per case after one warm-up (default: 3)")
    models.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    models.add_argument("--rounds", type=int, default=3,
                        help="measurements of every case, interleaved across cases (default: 3)")
    models.add_argument("--timeout", type=float, default=600, help="seconds allowed per case (default: 600)")
    models.add_argument("--profile", action="store_true",
                        help="instead of timing: each config's top operators of one training step at the longest "
                        "--seq-lens (torch.profiler)")
    models.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default: runs/bench)")
    models.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from megageo.bench import models

    frame = models.parse_frame(args.frame)
    if args.profile:
        return _profile_models(args, frame)

    def progress(case: models.BenchCase, round_index: int) -> None:
        print(f"  round {round_index + 1}/{args.rounds}: {case.mixer} @ {case.seq_len}: {case.status}", flush=True)

    results = models.run_bench(args.configs, list(args.seq_lens), args.batch_size, frame, args.steps, args.threads,
                               args.timeout, args.rounds, progress)
    print(models.format_table(results))
    print("\n".join(models.ratios_to_transformer(results)))
    json_path, plot_path = models.write_results(results, args.out)
    print(f"wrote {json_path} and {plot_path}")
    return 0


def _profile_models(args: argparse.Namespace, frame: tuple[int, int, int]) -> int:
    from megageo.bench.profile import profile_step
    from megageo.config import load_config
    from megageo.parallel import groups

    mixers = {path: load_config(path).model.mixer.type for path in args.configs}  # fail on a bad config first
    length = max(args.seq_lens)
    groups.initialize_single_process()
    try:
        for path, mixer in mixers.items():
            print(f"\n{mixer} ({path}) at {length:,d} frames, one training step:", flush=True)
            print(profile_step(path, length, args.batch_size, frame, args.threads), flush=True)
    finally:
        groups.shutdown()
    return 0


def _register_context(benchmarks: argparse._SubParsersAction) -> None:
    context = benchmarks.add_parser(
        "context", help="context parallelism: step time and per-rank peak memory at CP = 1, 2, 4 over long contexts",
        description="Train-step time and per-rank peak memory of whole forecasters split across CP gloo ranks on this "
        "machine (each case a fresh group of processes, random NCEP-shaped frames). Prints, per mixer, the per-rank "
        "memory ratio of the largest CP degree to CP=1 at 32,768 frames and the time per 1K frames at each length. "
        "Writes bench_context.json to --out.",
    )
    context.add_argument("--configs", nargs="+", default=["configs/tiny/gla.yaml"], metavar="CFG",
                         help="model configs (default: the tiny GLA)")
    context.add_argument("--lengths", type=_comma_separated_ints, default=(16384, 32768, 65536, 131072),
                         metavar="T,T,...", help="input frames per sample (default: 16384,32768,65536,131072)")
    context.add_argument("--cp", type=_comma_separated_ints, default=(1, 2, 4), metavar="N,N,...",
                         help="context-parallel degrees, one process each (default: 1,2,4)")
    context.add_argument("--frame", default="1,73,144", metavar="C,H,W", help="frame shape (default: 1,73,144)")
    context.add_argument("--steps", type=int, default=2, help="timed steps per case after one warm-up (default: 2)")
    context.add_argument("--threads", type=int, default=0,
                         help="torch threads per rank (default: 0 = this machine's cores / CP, at least 1)")
    context.add_argument("--timeout", type=float, default=1800, help="seconds allowed per case (default: 1800)")
    context.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="config override for every case, e.g. parallel.activation_checkpointing=true")
    context.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder (default: runs/bench)")
    context.set_defaults(func=_run_context)


def _run_context(args: argparse.Namespace) -> int:
    from megageo.bench import context, models

    frame = models.parse_frame(args.frame)
    cases = context.parse_cases(args.configs, list(args.lengths), list(args.cp))

    def progress(case) -> None:
        print(f"  {case.mixer} @ {case.frames:,d} frames, CP={case.cp}: {case.status}", flush=True)

    results = context.run_bench(cases, frame, args.steps, args.threads, args.timeout, args.overrides, progress)
    print(context.format_table(results))
    print("\n".join(context.summary_lines(results)))
    print(f"wrote {context.write_results(results, args.out)}")
    return 0


def _comma_separated_ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
