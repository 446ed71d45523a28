"""Reshard: a checkpoint at one layout → a DeepSpeed checkpoint at another, Adam state and schedule included.

The source is consolidated offline into full tensors (`full_state`). The target is written by the target
layout's own `TrainEngine`, one spawned CPU process per rank: each takes its shard of every weight and moment
(by the declared partitions), hands them to DeepSpeed (`safe_set_full_*` under ZeRO, the optimizer state
directly without), and saves through `megageo.train.checkpoint`. DeepSpeed thus writes its own file format
for every ZeRO stage and pipeline layout. The output folder appears only once every rank has saved.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from megageo.config import Config, config_from_dict
from megageo.convert.full_state import FullState, consolidate
from megageo.convert.layout import ModelLayout
from megageo.convert.shards import MOMENTS
from megageo.convert.source import open_checkpoint
from megageo.errors import MegageoError
from megageo.io.atomic import atomic_dir
from megageo.train.engine import Layout


def reshard(
    checkpoint: str | Path, out_dir: str | Path, tp: int, pp: int, dp: int | None = None, cp: int | None = None,
    zero_stage: int | None = None,
) -> Path:
    """Write `out_dir` (a new `checkpoints` folder holding `latest`) at TP=`tp`, PP=`pp`, DP=`dp`, CP=`cp` and
    ZeRO stage `zero_stage` (default: the source's). Fails before writing anything if the layout cannot hold the
    model. CP ranks hold whole weights, so a CP change only re-partitions ZeRO state over DP×CP ranks."""
    out = Path(out_dir)
    if out.exists():
        raise MegageoError(f"{out} already exists: reshard writes a new checkpoint folder")
    source = open_checkpoint(checkpoint)
    target = Layout(tp, pp, source.layout.dp if dp is None else dp,
                    source.layout.zero_stage if zero_stage is None else zero_stage,
                    source.layout.cp if cp is None else cp)
    check_deepspeed_version(target.zero_stage)
    config = retarget(source.config, target)
    layout = ModelLayout(config, source.frame_shape)
    layout.check_tensor_parallel(tp)
    state = consolidate(source, layout, with_optimizer=True)
    metadata = {**source.metadata, "layout": target.as_dict(), "config": config.to_dict(),
                "frame_shape": list(source.frame_shape)}
    metadata.pop("step")

    with atomic_dir(out) as staging, tempfile.TemporaryDirectory() as scratch:
        state_file = Path(scratch) / "full_state.pt"
        torch.save(state, state_file)
        spawn_ranks(target.world_size, config, target, source.frame_shape, state_file, staging, source.step, metadata)
    return out


DEEPSPEED_WRITTEN_FOR = "0.19.8"
PRIVATE_INIT = "_lazy_init_hp_params_optimizer_state"


def check_deepspeed_version(zero_stage: int) -> None:
    """ZeRO-1/2 targets need Adam's state before the first step, which only DeepSpeed's private `PRIVATE_INIT` of
    its ZeRO optimizer creates and links to each parameter (`load_into`); that was written against one DeepSpeed
    release, so any other is refused before work starts rather than trusted to write a wrong checkpoint."""
    if zero_stage not in (1, 2):
        return
    import deepspeed

    from deepspeed.runtime.zero.stage_1_and_2 import DeepSpeedZeroOptimizer

    version = deepspeed.__version__.split("+")[0]
    if version != DEEPSPEED_WRITTEN_FOR or not callable(getattr(DeepSpeedZeroOptimizer, PRIVATE_INIT, None)):
        raise MegageoError(
            f"reshard of ZeRO-{zero_stage} checkpoints relies on DeepSpeed {DEEPSPEED_WRITTEN_FOR}'s private "
            f"DeepSpeedZeroOptimizer.{PRIVATE_INIT}, and this is DeepSpeed {deepspeed.__version__}: check that it "
            "still creates Adam's state and links each parameter to it, then update "
            "megageo.convert.reshard.DEEPSPEED_WRITTEN_FOR"
        )


def retarget(config: Config, target: Layout) -> Config:
    """The source config at the target layout, validated (heads vs TP, stages vs layers, ZeRO vs PP, frames vs CP)."""
    raw = config.to_dict()
    raw["parallel"].update(tensor_parallel=target.tp, pipeline_parallel=target.pp, context_parallel=target.cp,
                           zero_stage=target.zero_stage, sequence_parallel=raw["parallel"]["sequence_parallel"] and target.tp > 1)
    return config_from_dict(raw)


def spawn_ranks(world_size: int, *args: Any) -> None:
    """One local CPU process per rank of the target layout (gloo), as a launcher would start them."""
    import torch.multiprocessing as mp

    from megageo.parallel.launch_env import free_port

    mp.start_processes(_write_rank, args=(world_size, free_port(), *args), nprocs=world_size, start_method="spawn")


def _write_rank(
    rank: int, world_size: int, port: int, config: Config, target: Layout, frame_shape: tuple[int, int, int],
    state_file: Path, out: Path, step: int, metadata: dict[str, Any],
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1")
    from megageo.parallel import groups
    from megageo.train.checkpoint import Checkpoints
    from megageo.train.engine import TrainEngine

    groups.initialize(target.tp, target.pp, context_parallel=target.cp)
    try:
        engine = TrainEngine(config, target, frame_shape)
        state = torch.load(state_file, weights_only=False, mmap=True)
        load_into(engine.engine, state, ModelLayout(config, frame_shape), groups.tp_rank(), target.tp, target.pp > 1)
        Checkpoints(out, keep_last=1, is_writer=rank == 0).save(engine.engine, step, metadata)
    finally:
        groups.shutdown()


def load_into(engine: Any, state: FullState, layout: ModelLayout, tp_rank: int, tp: int, pipelined: bool) -> None:
    """Put this rank's shard of every weight and Adam moment, the Adam step, the learning rate, the LR
    schedule and DeepSpeed's step counters into a freshly built engine."""
    from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

    zero = engine.zero_optimization_stage()
    masters = {}
    if not zero and hasattr(engine.optimizer, "fp32_groups"):  # bf16 without ZeRO: the optimizer steps fp32 copies
        masters = {id(low): master for lows, highs in zip(engine.optimizer.fp16_groups, engine.optimizer.fp32_groups)
                   for low, master in zip(lows, highs, strict=True)}
    base = engine.optimizer.optimizer if zero or masters else engine.optimizer
    step = torch.tensor(float(state.adam_step))
    # Adam's state is created lazily at the first step; create it now. ZeRO-3 lends its flat fp32 partitions to
    # the torch optimizer's param groups only during a step, so they are taken from the ZeRO-3 optimizer itself.
    flats = (engine.optimizer.fp32_partitioned_groups_flat if zero == 3
             else [flat for group in base.param_groups for flat in group["params"]])
    for flat in flats:
        base.state[flat] = {"step": step.clone(), **{key: torch.zeros_like(flat) for key in MOMENTS}}
    if zero in (1, 2):
        getattr(engine.optimizer, PRIVATE_INIT)()  # links each param to its piece of that state
    with torch.no_grad():
        for local_name, param in engine.module.named_parameters():
            name = layout.full_name(local_name, pipelined)
            spec = layout.params[name]
            weight = spec.shard(state.weights[name], tp_rank, tp)
            moments = {key: spec.shard(state.moments[key][name], tp_rank, tp).clone() for key in MOMENTS}
            if zero < 3:
                param.copy_(weight)
            if zero:
                safe_set_full_fp32_param(param, weight)
                for key, value in moments.items():
                    safe_set_full_optimizer_state(param, value, key)
            else:
                master = masters.get(id(param), param)
                master.copy_(weight)
                base.state[master].update(moments)
    scheduler = state.engine["lr_scheduler"]
    for group, lr in zip(engine.optimizer.param_groups, scheduler["_last_lr"], strict=True):
        group["lr"] = lr
    engine.lr_scheduler.load_state_dict(scheduler)
    engine.global_steps = state.engine["global_steps"]
    engine.global_samples = state.engine["global_samples"]
    engine.skipped_steps = state.engine["skipped_steps"]
