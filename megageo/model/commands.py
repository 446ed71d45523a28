"""`megageo model ...`: inspect forecaster configurations without training them."""

from __future__ import annotations

import argparse

NCEP_FRAME = (1, 73, 144)


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="inspect model configurations")
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    summary = commands.add_parser(
        "summary", help="parameter count by part and FLOPs per token",
        description="Print the parameter count of a config's model (a forecaster, or the denoiser of task: diffusion) "
        "by part (input projection, backbone, head) and its analytic FLOPs per token at several sequence lengths. "
        "A token is a frame, or one patch of a frame for a token model (model.tokens=patch). The frame is C×73×144 "
        "(the NCEP grid, C = number of levels) unless --frame says otherwise.",
    )
    summary.add_argument("--config", nargs="+", required=True, help="one or more YAML configs")
    summary.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. --set model.num_layers=12 (repeatable)")
    summary.add_argument("--frame", default=None, metavar="C,H,W", help="frame shape (default: levels,73,144)")
    summary.add_argument("--seq-lens", default="8,1024,16384", help="comma-separated sequence lengths in frames for FLOPs")
    summary.set_defaults(func=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from megageo.config import load_config
    from megageo.model.summary import format_summary, summarize
    from megageo.parallel import groups
    from megageo.train.tasks import unsharded_model

    frame = tuple(int(v) for v in args.frame.split(",")) if args.frame else NCEP_FRAME
    seq_lens = [int(v) for v in args.seq_lens.split(",")]
    configs = {path: load_config(path, args.overrides) for path in args.config}
    groups.initialize_single_process()
    for path, config in configs.items():
        summary = summarize(unsharded_model(config, frame), config.model, frame)
        print(f"{path} (T_out = {config.data.t_out}, frame {frame})")
        print(format_summary(config.model, summary, seq_lens))
    return 0
