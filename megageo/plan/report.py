"""The plan as a table, as JSON, and as the one line that says why nothing fits."""

from __future__ import annotations

from typing import Any

from megageo.plan.job import Job
from megageo.plan.layouts import Machine, Plan
from megageo.plan.memory import Memory

GIB = 2**30
PART_LABELS = {"weights": "weights", "gradients": "gradients", "optimizer": "optimizer state",
               "frames": "input frames", "activations": "activations", "transient": "transients",
               "cp_buffers": "CP buffers", "runtime": "runtime"}


def describe_job(job: Job, config_path: str) -> str:
    model = job.model
    params = sum(job.params.values())
    tokens = (f" = {job.positions:,d} tokens ({job.tokens_per_frame:,d} a frame, patch {model.patch_size}"
              f"{', frame-causal' if model.frame_causal else ''})" if job.tokenized else "")
    return (f"{config_path}: {model.mixer.type}, {model.num_layers} layers, hidden {model.hidden_size}, "
            f"{params / 1e6:.1f}M parameters; {job.frames:,d} frames of {job.frame_values:,d} values{tokens}, "
            f"micro-batch {job.micro_batch}, global batch {job.config.train.global_batch_size}")


def per_layer_gib(job: Job, plan: Plan, machine: Machine) -> float:
    from megageo.plan.activations import total_bytes

    layout = plan.layout
    local = job.positions / layout.cp
    return total_bytes(job.layer(machine.device.kernels, local, layout.cp), local, job.micro_batch, layout.tp,
                       layout.sequence_parallel, machine.device.activation_bytes) / GIB


def table(job: Job, plans: list[Plan], machine: Machine) -> str:
    header = (f"{'#':>3}  {'layout':<27}{'step s':>8}{'GiB/GPU':>9}{'weights':>8}{'grads':>7}{'optim':>7}"
              f"{'frames':>8}{'layer':>7}{'activ':>7}{'trans':>7}{'CP buf':>7}  peak at        "
              f"{'TP GB':>8}{'CP GB':>8}{'DP GB':>8}{'PP GB':>8}")
    lines = [header, "-" * len(header)]
    for rank, plan in enumerate(plans, 1):
        parts = {name: value / GIB for name, value in plan.memory.parts().items()}
        volume = {group: value / 1e9 for group, value in plan.cost.volume.items()}
        lines.append(
            f"{rank:>3}  {plan.layout.describe():<27}{plan.cost.step_s:>8.2f}{plan.memory.total / GIB:>9.1f}"
            f"{parts['weights']:>8.2f}{parts['gradients']:>7.2f}{parts['optimizer']:>7.2f}{parts['frames']:>8.2f}"
            f"{per_layer_gib(job, plan, machine):>7.2f}{parts['activations']:>7.2f}{parts['transient']:>7.2f}"
            f"{parts['cp_buffers']:>7.2f}  {plan.memory.moment:<15}"
            + "".join(f"{volume[group]:>8.0f}" if volume[group] >= 1000 else f"{volume[group]:>8.1f}"
                      for group in ("tp", "cp", "dp", "pp")))
    return "\n".join(lines)


LEGEND = ("Memory in GiB per GPU at the step's peak: 'layer' is one block's kept activations, 'activ' all kept "
          "activations of the\nrank's stage (with AC: checkpoint inputs + one recomputed block), 'trans' what the peak "
          "moment adds\n(backward workspace, frame gradient or optimizer temporaries), plus {runtime:.1f} GiB runtime.\nCommunication in GB sent per GPU per step (ring bus bytes). "
          "Layout: TP/CP/PP/DP degrees, +SP sequence parallel, Z = ZeRO stage, AC = activation checkpointing.")


def report(job: Job, config_path: str, fits: list[Plan], too_big: list[Plan], machine: Machine, top: int) -> str:
    shown = fits if top <= 0 else fits[:top]
    valid = len(fits) + len(too_big)
    lines = [describe_job(job, config_path),
             f"{machine.nodes} node{'s' if machine.nodes > 1 else ''} × {machine.gpus_per_node} {machine.device.name}, "
             f"{machine.device.memory_gib:g} GiB each, {machine.interconnect.name}",
             f"{len(fits)} of {valid} valid layouts fit; the {len(shown)} fastest by predicted step time "
             f"(peak {machine.device.peak_tflops:g} TFLOPS × {machine.device.efficiency:g}):", "",
             table(job, shown, machine), "", LEGEND.format(runtime=machine.device.runtime_gib)]
    return "\n".join(lines)


def dominant(memory: Memory) -> str:
    name, value = max(memory.parts().items(), key=lambda item: item[1])
    return f"{PART_LABELS[name]} {value / GIB:.1f} GiB"


def nothing_fits(job: Job, config_path: str, too_big: list[Plan], invalid: dict[str, int], machine: Machine) -> str:
    where = (f"{machine.nodes} node{'s' if machine.nodes > 1 else ''} × {machine.gpus_per_node} GPUs of "
             f"{machine.device.memory_gib:g} GiB")
    what = f"{config_path} at {job.frames:,d} frames"
    if not too_big:
        reason = max(invalid, key=invalid.get) if invalid else "no layout divides the GPUs"
        return f"no valid layout of {what} on {where}: {reason}"
    smallest = too_big[0]
    return (f"nothing fits {what} on {where}: the smallest layout, {smallest.layout.describe()}, needs "
            f"{smallest.memory.total / GIB:.1f} GiB per GPU, the largest part {dominant(smallest.memory)}")


def as_json(job: Job, fits: list[Plan], top: int) -> list[dict[str, Any]]:
    shown = fits if top <= 0 else fits[:top]
    return [{"layout": vars(plan.layout) | {"name": plan.layout.describe()},
             "step_s": plan.cost.step_s, "compute_s": plan.cost.compute_s, "pipeline_bubble": plan.cost.bubble,
             "memory_bytes": plan.memory.parts() | {"total": plan.memory.total}, "peak_moment": plan.memory.moment,
             "communication_bytes": plan.cost.volume, "communication_s": plan.cost.communication_s}
            for plan in shown]
