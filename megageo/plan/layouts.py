"""Every layout of a job on a machine, checked as `megageo train` would check it, then sized and ranked.

A layout is TP × CP × PP × DP = nodes × GPUs per node, a ZeRO stage, activation checkpointing on or off, and
sequence parallelism on or off where TP > 1. TP groups stay inside a node (its all-reduces run twice per layer;
across nodes they would run at a tenth of the bandwidth), so TP divides the GPUs per node. Each candidate goes
through the config's own validation (heads vs TP, layers vs PP, ZeRO > 1 vs PP, Mamba2's groups vs TP, ...),
through the forecaster's shape check (frame values vs TP), through DeepSpeed's batch rule (global batch a multiple
of micro-batch × DP) and through the context-parallel rules (frames divisible by CP, blocks at least the conv
halo, and divisible by TP under SP), so a planned layout is one that starts.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from megageo.config import Config, ParallelConfig, load_config
from megageo.errors import MegageoError
from megageo.plan.cost import Cost, cost
from megageo.plan.device import Device, Interconnect
from megageo.plan.job import Job, describe
from megageo.plan.memory import Layout, Memory, memory


@dataclass(frozen=True)
class Plan:
    layout: Layout
    memory: Memory
    cost: Cost


@dataclass(frozen=True)
class Machine:
    nodes: int
    gpus_per_node: int
    device: Device
    interconnect: Interconnect

    @property
    def world(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def budget(self) -> float:
        return self.device.memory_gib * 2**30


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(world: int, gpus_per_node: int, frames: int, num_layers: int) -> list[Layout]:
    layouts = []
    for tp in (d for d in divisors(gpus_per_node) if world % d == 0):
        for cp in (d for d in divisors(world // tp) if frames % d == 0):
            for pp in (d for d in divisors(world // (tp * cp)) if d <= num_layers):
                dp = world // (tp * cp * pp)
                for zero in (0, 1) if pp > 1 else (0, 1, 2, 3):
                    for recompute in (False, True):
                        for sequence_parallel in (False, True) if tp > 1 else (False,):
                            layouts.append(Layout(tp, cp, pp, dp, zero, recompute, sequence_parallel))
    return layouts


def context_parallel_problem(config: Config, frames: int, layout: Layout) -> str | None:
    """The context-parallel checks of megageo's config (mirrored here so the planner also runs on code that
    predates the `parallel.context_parallel` key)."""
    if frames % layout.cp:
        return f"{frames} frames do not split into {layout.cp} blocks"
    block = frames // layout.cp
    mixer = config.model.mixer
    halo = mixer.conv_size - 1 if getattr(mixer, "use_short_conv", False) else 0
    if layout.cp > 1 and block < halo:
        return f"blocks of {block} frames are shorter than the conv halo of {halo}"
    if layout.sequence_parallel and block % layout.tp:
        return f"blocks of {block} frames do not split across {layout.tp} SP ranks"
    return None


@functools.lru_cache(maxsize=None)
def config_problem(config_path: str, overrides: tuple[str, ...], tp: int, pp: int, zero: int,
                   sequence_parallel: bool) -> str | None:
    settings = [f"parallel.tensor_parallel={tp}", f"parallel.pipeline_parallel={pp}", f"parallel.zero_stage={zero}",
                f"parallel.sequence_parallel={str(sequence_parallel).lower()}"]
    try:
        load_config(config_path, [*overrides, *settings])
    except MegageoError as error:
        return str(error)
    return None


def problem(job: Job, config_path: str, overrides: tuple[str, ...], layout: Layout) -> str | None:
    """Why `layout` cannot run this job, or None."""
    found = config_problem(config_path, overrides, layout.tp, layout.pp, layout.zero, layout.sequence_parallel)
    if found:
        return found
    if job.tokenized and job.token_values % layout.tp:
        return f"tokens of {job.token_values} values do not split across {layout.tp} TP ranks"
    if not job.tokenized and job.frame_values % layout.tp:
        return f"frames of {job.frame_values} values do not split across {layout.tp} TP ranks"
    if job.config.train.global_batch_size % (job.micro_batch * layout.dp):
        return (f"global batch {job.config.train.global_batch_size} is not a multiple of micro-batch "
                f"{job.micro_batch} × DP {layout.dp}")
    return context_parallel_problem(job.config, job.frames, layout)


def load_job(config_path: str, overrides: list[str], frames: int, frame_shape: tuple[int, int, int],
             micro_batch: int) -> tuple[Job, tuple[str, ...]]:
    """The job at `frames` frames; the config is read with the parallel settings reset, since the plan sets them."""
    if frames < 1:
        raise MegageoError(f"--frames must be at least 1, got {frames}")
    if micro_batch < 1:
        raise MegageoError(f"--micro-batch must be at least 1, got {micro_batch}")
    reset = [f"parallel.{f.name}={value}" for f in dataclasses.fields(ParallelConfig)
             for value in [str(f.default).lower() if isinstance(f.default, bool) else f.default]]
    settings = (*overrides, *reset, f"data.t_in={frames}", f"train.micro_batch_size={micro_batch}")
    config = load_config(config_path, list(settings))
    return describe(config, frames, frame_shape, micro_batch), settings


def plan(config_path: str, overrides: list[str], frames: int, frame_shape: tuple[int, int, int], micro_batch: int,
         machine: Machine) -> tuple[Job, list[Plan], list[Plan], dict[str, int]]:
    """(job, layouts that fit fastest first, valid layouts that do not fit smallest first, why the rest are
    invalid: reason → count)."""
    job, settings = load_job(config_path, overrides, frames, frame_shape, micro_batch)
    fits, too_big, invalid = [], [], {}
    for layout in candidates(machine.world, machine.gpus_per_node, frames, job.num_layers):
        reason = problem(job, config_path, settings, layout)
        if reason:
            invalid[reason] = invalid.get(reason, 0) + 1
            continue
        result = Plan(layout, memory(job, layout, machine.device),
                      cost(job, layout, machine.device, machine.interconnect, machine.gpus_per_node))
        (fits if result.memory.total <= machine.budget else too_big).append(result)
    fits.sort(key=lambda p: (p.cost.step_s, p.layout.tp, p.memory.total))
    too_big.sort(key=lambda p: p.memory.total)
    return job, fits, too_big, invalid
