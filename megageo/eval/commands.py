"""`megageo eval` and `megageo forecast`: score a trained model against baselines; write a forecast file."""

from __future__ import annotations

import argparse
from pathlib import Path

CHECKPOINT_HELP = ("a release checkpoint (.safetensors from `megageo convert consolidate`) or a training run / "
                   "DeepSpeed checkpoint folder (consolidated in memory)")


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "eval", help="score a checkpoint against persistence and climatology on the validation split",
        description="Evaluate a checkpoint on the validation split at every 6-hourly lead up to T_out, or up to "
        "--lead-hours by feeding the model's forecasts back (autoregressive rollout): RMSE (the seed paper's eq. 13), "
        "latitude-weighted RMSE and ACC (WeatherBench 2), and the paper's batch-mean ACC, next to persistence and "
        "climatology baselines on the same samples, and each forecast's useful-skill horizon (the last lead of the "
        "initial run of leads with ACC >= 0.6), in each variable's units. Writes eval.json, eval.md, maps.png "
        "(forecast/truth/error), rmse_vs_lead.png, acc_vs_lead.png and, for a run, loss.png; a model of several "
        "variables gets one section of eval.md and eval.json per variable and maps_VAR.png etc. for each.",
    )
    evaluate.add_argument("checkpoint", help=CHECKPOINT_HELP)
    evaluate.add_argument("--out", type=Path, required=True, help="output folder")
    evaluate.add_argument("--store", default=None, help="HDF5 store (default: the one the model was trained on)")
    evaluate.add_argument("--samples", type=int, default=256,
                          help="validation windows, evenly spread over the split (default: 256, as in the paper)")
    evaluate.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default: 32)")
    evaluate.add_argument("--lead-hours", type=float, default=None,
                          help="longest lead to score, a multiple of 6 h and at least the model's T_out x 6 h; leads "
                          "beyond T_out are rolled out, e.g. 120 for five days (default: T_out x 6 h)")
    evaluate.add_argument("--map-sample", type=int, default=0, help="which evaluated sample to map (default: 0)")
    evaluate.add_argument("--name", default=None, help="label of the model in tables and plots (default: mixer)")
    evaluate.set_defaults(func=run_eval)

    forecast = subparsers.add_parser(
        "forecast", help="forecast from an initial time in the store, written as CF netCDF",
        description="Run a checkpoint from the T_in frames ending at --init (a time in the store), feeding its "
        "predictions back until --lead-hours, and write each variable it forecasts (hgt in m, winds in m s-1, ...) "
        "as a CF-1.8 netCDF variable with time, lead_time, valid_time, level, lat and lon.",
    )
    forecast.add_argument("checkpoint", help=CHECKPOINT_HELP)
    forecast.add_argument("--init", required=True, help="initial time, e.g. 2021-01-15T00 (must be in the store)")
    forecast.add_argument("--lead-hours", type=float, default=120, help="longest lead in hours (default: 120)")
    forecast.add_argument("--out", type=Path, required=True, help="netCDF file to write")
    forecast.add_argument("--store", default=None, help="HDF5 store (default: the one the model was trained on)")
    forecast.set_defaults(func=run_forecast)


def run_eval(args: argparse.Namespace) -> int:
    from megageo.eval.evaluate import evaluate_checkpoint
    from megageo.eval.report import report_markdown, variables_markdown

    report = evaluate_checkpoint(args.checkpoint, args.out, args.store, args.samples, args.batch_size,
                                 args.lead_hours, args.map_sample, args.name)
    print(variables_markdown(report["variables"]) if "variables" in report else report_markdown(report))
    print(f"wrote {args.out}/eval.json, eval.md and figures")
    return 0


def run_forecast(args: argparse.Namespace) -> int:
    from megageo.eval.forecast import write_forecast

    path = write_forecast(args.checkpoint, args.init, args.lead_hours, args.out, args.store)
    print(f"wrote {path}")
    return 0
