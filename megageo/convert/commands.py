"""`megageo convert consolidate | reshard | inspect`: DeepSpeed checkpoints to releases and other layouts."""

from __future__ import annotations

import argparse


def run_consolidate(args: argparse.Namespace) -> int:
    from megageo.convert.release import load_release, save_release

    release = load_release(args.checkpoint)
    out = save_release(release, args.out, args.dtype)
    print(f"{out}: {len(release.state_dict)} tensors ({args.dtype}) at step {release.step}")
    return 0


def run_reshard(args: argparse.Namespace) -> int:
    from megageo.convert.reshard import reshard
    from megageo.convert.source import open_checkpoint
    from megageo.train.checkpoint import format_layout

    out = reshard(args.checkpoint, args.out_dir, args.tp, args.pp, args.dp, args.cp, args.zero_stage)
    print(f"{out}: resharded to {format_layout(open_checkpoint(out).layout.as_dict())}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from megageo.convert.layout import ModelLayout
    from megageo.convert.report import describe
    from megageo.convert.source import open_checkpoint

    source = open_checkpoint(args.checkpoint)
    print(describe(source, ModelLayout(source.config, source.frame_shape)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    convert = subparsers.add_parser(
        "convert", help="consolidate, reshard and inspect training checkpoints",
        description="Convert megageo DeepSpeed checkpoints. CKPT_DIR is the folder holding DeepSpeed's 'latest' "
        "file (a run directory or a tag folder also works).",
    )
    actions = convert.add_subparsers(dest="convert_command", metavar="ACTION", required=True)

    consolidate = actions.add_parser(
        "consolidate", help="one safetensors file of full weights, config and normalisation stats",
        description="Merge every ZeRO, TP and PP shard into full weights that `megageo eval` loads on one CPU.",
    )
    consolidate.add_argument("checkpoint", metavar="CKPT_DIR")
    consolidate.add_argument("out", metavar="OUT.safetensors")
    consolidate.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="weight dtype (default fp32)")
    consolidate.set_defaults(func=run_consolidate)

    reshard = actions.add_parser(
        "reshard", help="a DeepSpeed checkpoint at another TP/CP/PP/DP/ZeRO layout, optimizer state included",
        description="Rewrite a checkpoint for another layout so `megageo train --resume` continues there. "
        "OUT_DIR becomes the new run's checkpoints folder (train.out_dir/checkpoints).",
    )
    reshard.add_argument("checkpoint", metavar="CKPT_DIR")
    reshard.add_argument("out_dir", metavar="OUT_DIR")
    reshard.add_argument("--tp", type=int, required=True, help="tensor-parallel degree of the new layout")
    reshard.add_argument("--pp", type=int, default=1, help="pipeline stages of the new layout (default 1)")
    reshard.add_argument("--dp", type=int, default=None, help="data-parallel degree (default: the checkpoint's)")
    reshard.add_argument("--cp", type=int, default=None, help="context-parallel degree (default: the checkpoint's)")
    reshard.add_argument("--zero-stage", type=int, choices=(0, 1, 2, 3), default=None,
                         help="ZeRO stage of the new layout (default: the checkpoint's)")
    reshard.set_defaults(func=run_reshard)

    inspect = actions.add_parser(
        "inspect", help="every tensor's shape, dtype and TP layout, and the step, layout and config",
    )
    inspect.add_argument("checkpoint", metavar="CKPT_DIR")
    inspect.set_defaults(func=run_inspect)
