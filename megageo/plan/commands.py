"""`megageo plan`: the layouts that fit a job on a machine, fastest first, with where each GPU's memory goes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from megageo.errors import MegageoError


def register(subparsers: argparse._SubParsersAction) -> None:
    from megageo.plan.device import DEVICES, INTERCONNECTS

    parser = subparsers.add_parser(
        "plan", help="which TP/CP/PP/DP/ZeRO/checkpointing layouts fit a job, ranked by predicted step time",
        description="Enumerate every layout (tensor, context, pipeline and data parallel degrees, ZeRO stage 0-3, "
        "sequence parallelism, activation checkpointing) of NODES × GPUS_PER_NODE ranks that the config accepts, "
        "predict each one's peak memory per GPU (weights, gradients, optimizer state, input frames, activations "
        "from the mixer's own structure, context-parallel buffers) and its communication per step, and list those "
        "that fit, fastest first. Exits 1 with one line when none fits. Formulas and their sources: megageo/plan/.",
    )
    parser.add_argument("--config", required=True, metavar="CFG", help="model/training config (YAML)")
    parser.add_argument("--frames", type=int, required=True, metavar="N", help="input frames per sample (data.t_in)")
    parser.add_argument("--nodes", type=int, required=True, metavar="M", help="nodes in the job")
    parser.add_argument("--gpus-per-node", type=int, default=4, help="GPUs per node (default 4, as on Polaris)")
    parser.add_argument("--device", choices=sorted(DEVICES), default="a100-bf16",
                        help="GPU and software profile (default a100-bf16; cpu-fp32 is this machine's CPU path)")
    parser.add_argument("--gpu-memory-gb", type=float, default=None, metavar="GIB",
                        help="memory per GPU in GiB (default: the device's, 40 for a100-bf16)")
    parser.add_argument("--interconnect", choices=sorted(INTERCONNECTS), default="polaris",
                        help="link bandwidths inside and between nodes (default polaris)")
    parser.add_argument("--efficiency", type=float, default=None,
                        help="fraction of peak FLOPS a step sustains (default: the device's, 0.35 on GPUs)")
    parser.add_argument("--micro-batch", type=int, default=1, metavar="B", help="samples per micro-batch (default 1)")
    parser.add_argument("--frame", default="1,73,144", metavar="C,H,W",
                        help="frame shape: levels, latitudes, longitudes (default 1,73,144, the NCEP grid)")
    parser.add_argument("--top", type=int, default=10, help="layouts to list (default 10; 0 lists all that fit)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. train.global_batch_size=64")
    parser.add_argument("--json", action="store_true", help="print the ranked layouts as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from megageo.bench.models import parse_frame

    if args.nodes < 1 or args.gpus_per_node < 1:
        raise MegageoError(f"--nodes and --gpus-per-node must be at least 1, got {args.nodes} and {args.gpus_per_node}")
    if args.frames < 1:
        raise MegageoError(f"--frames must be at least 1, got {args.frames}")
    from megageo.plan.device import DEVICES, INTERCONNECTS
    from megageo.plan.layouts import Machine, plan
    from megageo.plan.report import as_json, nothing_fits, report

    device = DEVICES[args.device]
    if args.gpu_memory_gb is not None:
        if args.gpu_memory_gb <= 0:
            raise MegageoError(f"--gpu-memory-gb must be positive, got {args.gpu_memory_gb}")
        device = dataclasses.replace(device, memory_gib=args.gpu_memory_gb)
    if args.efficiency is not None:
        if not 0 < args.efficiency <= 1:
            raise MegageoError(f"--efficiency must be in (0, 1], got {args.efficiency}")
        device = dataclasses.replace(device, efficiency=args.efficiency)
    machine = Machine(args.nodes, args.gpus_per_node, device, INTERCONNECTS[args.interconnect])
    job, fits, too_big, invalid = plan(args.config, args.overrides, args.frames, parse_frame(args.frame),
                                       args.micro_batch, machine)
    if not fits:
        print(f"megageo: {nothing_fits(job, args.config, too_big, invalid, machine)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json(job, fits, args.top), indent=1))
    else:
        print(report(job, args.config, fits, too_big, machine, args.top))
    return 0
