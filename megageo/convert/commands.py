"""`megageo convert consolidate | inspect`: DeepSpeed checkpoints to releases and other layouts."""

from __future__ import annotations

import argparse


def run_consolidate(args: argparse.Namespace) -> int:
    from megageo.convert.release import load_release, save_release

    release = load_release(args.checkpoint)
    out = save_release(release, args.out, args.dtype)
    print(f"{out}: {len(release.state_dict)} tensors ({args.dtype}) at step {release.step}")
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

    inspect = actions.add_parser(
        "inspect", help="every tensor's shape, dtype and TP layout, and the step, layout and config",
    )
    inspect.add_argument("checkpoint", metavar="CKPT_DIR")
    inspect.set_defaults(func=run_inspect)
