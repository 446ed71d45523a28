"""The training loop: discover the launch, check the layout, build the engine, step, log, evaluate, save.

Everything that can be wrong with the configuration (layout vs world size, batch vs DP x micro-batch, data
too short) fails before any process group or engine exists. Step numbers in records and checkpoints count
completed optimizer steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from megageo.config import Config, dump_config
from megageo.data.dataset import WindowDataset
from megageo.errors import MegageoError
from megageo.model.summary import summarize
from megageo.parallel import groups
from megageo.parallel.launch_env import LaunchEnv, discover, torch_env
from megageo.train.checkpoint import Checkpoints
from megageo.train.data import Sharding, TrainBatches, check_batch, validation_batches
from megageo.train.engine import Layout, TrainEngine
from megageo.train.metrics_log import MetricsLog, peak_memory_gb
from megageo.train.objective import loss_weights
from megageo.train.preemption import Preemption
from megageo.train.tasks import unsharded_model


def train(config: Config, resume: bool = False, stop_at: int | None = None) -> list[float]:
    """Train from scratch (or from `latest` with `resume`) up to `train.steps`, or leave with a checkpoint after
    step `stop_at` as a preempted job would. Returns the mean loss of every step this call ran."""
    launch = discover()
    with torch_env(launch):
        return _train(config, launch, resume, stop_at)


def _train(config: Config, launch: LaunchEnv, resume: bool, stop_at: int | None) -> list[float]:
    layout = Layout.of(config.parallel, launch.world_size)
    check_batch(config.train.global_batch_size, config.train.micro_batch_size, layout.dp)
    data = config.data
    frames_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[data.frames_dtype]
    leads = data.t_out * config.train.rollout_steps
    channels = dict(variables=data.variables or None, levels=data.levels or None, frames_dtype=frames_dtype,
                    normalisation=data.normalisation)
    train_set = WindowDataset(data.store, "train", data.t_in, leads, data.stride, **channels)
    val_set = WindowDataset(data.store, "val", data.t_in, leads, data.stride, **channels,
                            statistics=(train_set.mean, train_set.std))
    run_dir = Path(config.train.out_dir)
    checkpoints = Checkpoints(run_dir / "checkpoints", config.train.keep_last, is_writer=launch.rank == 0)
    if not resume and checkpoints.latest_tag() is not None:
        raise MegageoError(f"{run_dir} already holds checkpoints: pass --resume, or choose another train.out_dir")

    groups.initialize(layout.tp, layout.pp, context_parallel=layout.cp)
    from megatron.core import parallel_state

    sharding = Sharding(config.train.global_batch_size, config.train.micro_batch_size,
                        parallel_state.get_data_parallel_rank(), layout.dp,
                        parallel_state.get_context_parallel_rank(), layout.cp)
    frame_shape = (len(train_set.channels), *train_set.store.shape[2:])
    engine = TrainEngine(config, layout, frame_shape, loss_weights(config, train_set.store.lat))
    start = checkpoints.load(engine.engine, layout.as_dict()) if resume else 0
    if launch.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, run_dir / "config.yaml")
    dist.barrier()
    metadata = {
        "layout": layout.as_dict(), "config": config.to_dict(), "frame_shape": list(frame_shape),
        "normalization": {"store": str(data.store), "variables": train_set.store.variable[train_set.channels].tolist(),
                          "levels": train_set.store.level[train_set.channels].tolist(),
                          "units": train_set.store.units[train_set.channels].tolist(),
                          "mean": train_set.mean.tolist(), "std": train_set.std.tolist()},
    }
    loop = Loop(config, engine, TrainBatches(train_set, sharding, config.train.seed),
                validation_batches(val_set, sharding, config.train.eval_samples),
                MetricsLog(run_dir, enabled=launch.rank == 0), frame_shape, launch.world_size)
    try:
        return loop.run(start, stop_at, lambda step: checkpoints.save(engine.engine, step, metadata))
    finally:
        loop.close()


class Loop:
    """Steps, records and the rank-0 progress bar of one run."""

    def __init__(self, config: Config, engine: TrainEngine, batches: TrainBatches, val_batches: list,
                 log: MetricsLog, frame_shape: tuple[int, int, int], world_size: int):
        self.config, self.engine, self.batches, self.val_batches, self.log = config, engine, batches, val_batches, log
        train = config.train
        self.frames_per_step = train.global_batch_size * config.data.t_in
        summary = summarize(unsharded_model(config, frame_shape), config.model, frame_shape)
        forward = summary.flops_per_frame(config.model, config.data.t_in)
        self.flops_per_step_per_rank = 3 * forward * self.frames_per_step / world_size  # forward + 2x backward
        self.preemption = Preemption()
        self.bar = tqdm(total=train.steps, unit="step", desc="train", disable=not log.enabled, dynamic_ncols=True)

    def run(self, start: int, stop_at: int | None, save: Callable[[int], None]) -> list[float]:
        train = self.config.train
        last = train.steps if stop_at is None else min(stop_at, train.steps)
        self.bar.update(start)
        began = logged_at = time.perf_counter()
        logged_step = start
        losses: list[float] = []
        for step in range(start + 1, last + 1):
            lr = self.engine.lr
            loss = self.engine.train_step(list(self.batches.micro_batches(step - 1)))
            losses.append(loss)
            if step % train.log_every == 0 or step == last:
                now = time.perf_counter()
                self._record_step(step, loss, lr, step - logged_step, now - logged_at, now - began)
                logged_at, logged_step = now, step
            if train.eval_every and step % train.eval_every == 0:
                self.log.write({"split": "val", "step": step, "val_loss": self.engine.evaluate(self.val_batches)})
            stopping = self.preemption.agreed()
            if stopping or step == last or (train.save_every and step % train.save_every == 0):
                save(step)
            if stopping:
                if self.log.enabled:
                    tqdm.write(f"SIGTERM: stopped after step {step} with a checkpoint")
                break
        return losses

    def _record_step(self, step: int, loss: float, lr: float, steps: int, seconds: float, elapsed: float) -> None:
        record: dict[str, Any] = {
            "step": step, "loss": loss, "lr": lr, "grad_norm": self.engine.grad_norm(),
            "tokens_per_s": self.frames_per_step * steps / seconds,
            "tflops": self.flops_per_step_per_rank * steps / seconds / 1e12,
            "peak_mem_gb": peak_memory_gb(), "elapsed_s": elapsed,
        }
        self.log.write(record)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.4f}", frames_s=f"{record['tokens_per_s']:.0f}")

    def close(self) -> None:
        self.preemption.restore()
        self.bar.close()
        self.log.close()
