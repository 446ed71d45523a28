"""One rank's peak memory under a layout, part by part.

Model states (Rajbhandari et al., 2020, "ZeRO", §3; DeepSpeed's `estimate_zero2_model_states_mem_needs`:
2Ψ + 18Ψ/N bytes on the GPU without offload — 2 for 16-bit weights, 18 = 2 (16-bit gradients) + 4 (fp32
gradients) + 4 (fp32 master weights) + 8 (Adam moments); `estimate_zero3_model_states_mem_needs`:
4·L_max + 18Ψ/N). Ψ is what one rank's TP shard of its pipeline stage holds, N = DP × CP the ranks that share
those weights (CP ranks hold the same weights and reduce gradients with the DP ranks, as in Megatron). ZeRO-1
partitions the optimizer state over N, ZeRO-2 also the gradients, ZeRO-3 also the weights, gathering one module
at a time (4·L_max in 16 bits: twice the working weight bytes). Megatron's count without ZeRO is 18 bytes per
parameter (`theoretical_memory_usage.py`: 6 + 12, gradients accumulated in fp32 only). DeepSpeed's ZeRO-1/2
optimizer also stages gradients in a contiguous bucket of `reduce_bucket_size` elements (5·10⁸ by default,
allocated whole whatever the model's size: 1 GB in bf16), in the gradients' dtype under ZeRO-2 and in fp32 under
ZeRO-1 (`DeepSpeedZeroOptimizer.setup_buckets`); megageo's engine keeps the default.

Activations (`activations.py`) are kept for every layer of a rank's pipeline stage and for each micro-batch in
flight: 1F1B keeps min(pp − stage, m) on a stage (DeepSpeed's `TrainSchedule.num_pipe_buffers`), so the first
stage holds the most. Under context parallelism s becomes s/cp, plus what crosses ranks (`cp_buffers`): the
Transformer keeps every layer's all-gathered keys and values (the whole sequence, 2·s·b·h_kv per layer) and its
dense causal mask on CPU ((s/cp)·s per layer, see `cp_buffer_bytes`), the linear mixers one fp32 all-gather of [final state | transition] per layer (cp·b·H·K·(V + K) values; V + 1 where
the transition is diagonal) and the conv halo. Full recompute keeps each checkpoint's input (Megatron's 2·s·b·h)
and, in backward, one checkpoint's activations.

The peak is the largest of three moments of a step:
- `backward start`: states held through the forward (weights, optimizer, gradient buffers that persist), frames,
  every kept activation, and the backward workspace (`activations.backward_workspace`);
- `backward end`: all gradients, and the frames' gradient where Megatron's row-parallel input projection runs;
- `optimizer step`: all gradients and one gradient-sized temporary (DeepSpeed flattens gradients for its
  all-reduce, and AdamW works parameter by parameter) — measured: weights + optimizer + 2 × gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from megageo.plan.activations import MixerShape, Term, total_bytes
from megageo.plan.device import Device
from megageo.plan.job import Job

REDUCE_BUCKET = 5e8
"""DeepSpeed's default `zero_optimization.reduce_bucket_size` (elements)."""


@dataclass(frozen=True)
class Layout:
    tp: int
    cp: int
    pp: int
    dp: int
    zero: int
    recompute: bool
    sequence_parallel: bool = False

    @property
    def world(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def shards(self) -> int:
        """Ranks that hold the same weights and share ZeRO partitions: DP × CP."""
        return self.dp * self.cp

    def describe(self) -> str:
        sp = "+SP" if self.sequence_parallel else ""
        return f"TP{self.tp}{sp} CP{self.cp} PP{self.pp} DP{self.dp} Z{self.zero}{' AC' if self.recompute else ''}"


@dataclass(frozen=True)
class Memory:
    """Bytes on the most loaded rank at its peak moment."""

    runtime: float
    weights: float
    gradients: float
    optimizer: float
    frames: float
    activations: float
    transient: float
    """The backward workspace at `backward start`, the frames' gradient at `backward end`, the optimizer's
    temporaries at `optimizer step`."""
    cp_buffers: float
    moment: str
    """Which moment of the step peaks: `backward start`, `backward end` or `optimizer step`."""

    @property
    def total(self) -> float:
        return sum(self.parts().values())

    def parts(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "moment"}


def stage_layers(job: Job, layout: Layout) -> int:
    """Blocks on the most loaded pipeline stage (DeepSpeed's `type:Block` partition balances block counts)."""
    return math.ceil(job.num_layers / layout.pp)


def stage_params(job: Job, layout: Layout, stage: int) -> float:
    """Parameters on one rank of pipeline stage `stage`: its blocks, plus the input projection (first stage) and
    the head (last stage); TP splits all but the replicated ones."""
    parts = {"backbone": stage_layers(job, layout) / job.num_layers}
    if stage == 0:
        parts["input"] = 1.0
    if stage == layout.pp - 1:
        parts["head"] = 1.0
    return sum(share * ((job.params[p] - job.replicated[p]) / layout.tp + job.replicated[p])
               for p, share in parts.items())


def model_states(job: Job, layout: Layout, device: Device, params: float) -> tuple[float, float, float]:
    """(weights, gradients, optimizer) bytes for `params` parameters under the layout's ZeRO stage."""
    shards = layout.shards
    optimizer_bytes = device.optimizer_bytes
    if layout.zero == 0 and device.weight_bytes == 4:
        optimizer_bytes -= 4  # fp32 without ZeRO: the weights are the masters
    weights = params * device.weight_bytes / (shards if layout.zero >= 3 else 1)
    if layout.zero >= 3:
        weights += 2 * device.weight_bytes * job.largest_layer / layout.tp
    if layout.zero >= 3:  # fp32 gradient partitions; the gathered module's 16-bit gradients are in 4·L_max
        gradients = params * 4 / shards
    else:
        gradients = params * device.gradient_bytes / (shards if layout.zero >= 2 else 1)
    if layout.zero in (1, 2):  # ZeRO-1 stages in fp32, ZeRO-2 in the gradients' dtype
        gradients += REDUCE_BUCKET * (device.weight_bytes if layout.zero == 2 else 4)
    optimizer = params * optimizer_bytes / (shards if layout.zero >= 1 else 1)
    return weights, gradients, optimizer


def micro_batches(job: Job, layout: Layout) -> int:
    """Micro-batches each data-parallel replica runs per optimizer step."""
    return max(1, job.config.train.global_batch_size // (job.micro_batch * layout.dp))


def activation_bytes(job: Job, layout: Layout, device: Device, stage: int) -> tuple[float, float, float]:
    """(kept activations, backward workspace, CP buffers) on pipeline stage `stage`."""
    local = job.positions / layout.cp
    batch, tp, sp, act = job.micro_batch, layout.tp, layout.sequence_parallel, device.activation_bytes
    layers = stage_layers(job, layout)
    in_flight = min(layout.pp - stage, micro_batches(job, layout))
    terms = job.layer(device.kernels, local, layout.cp)

    def size(selected: list[Term]) -> float:
        return total_bytes(selected, local, batch, tp, sp, act)

    if layout.recompute:
        if job.recompute_unit == "sublayer":
            checkpoints = 2 if job.model.mixer.has_mlp else 1
            recomputed = max(size([t for t in terms if t.sublayer == part]) for part in ("mixer", "mlp"))
        else:
            checkpoints, recomputed = 1, size(terms)
        hidden_per_rank = job.model.hidden_size / (tp if sp else 1)
        kept = checkpoints * hidden_per_rank * local * batch * act * layers * in_flight + recomputed
    else:
        kept = size(terms) * layers * in_flight
    if stage == layout.pp - 1:
        kept += size(job.head())
    if stage == 0 and job.tokenized:  # the patch embedding keeps its input: the frames cut into tokens, fp32
        kept += local * batch * job.token_values * 4
    elif stage == 0 and frame_copy(job, layout):
        kept += local * batch * job.frame_values / tp * job.frame_bytes
    workspace = job.backward_workspace / tp * local * batch * act
    return kept, workspace, cp_buffer_bytes(job, layout, device, 1 if layout.recompute else layers * in_flight)


def frame_copy(job: Job, layout: Layout) -> bool:
    """Whether the input projection keeps a copy of the frames: the [B, T] → [T, B] transpose makes one when B > 1,
    and the TP scatter keeps its 1/tp of the features."""
    return layout.tp > 1 or job.micro_batch > 1


def cp_exchange_bytes(job: Job, layout: Layout, activation_bytes: int) -> float:
    """One layer's context-parallel all-gather, whole (what every CP rank receives and keeps for backward): the
    Transformer's keys and values of all blocks, or the linear mixers' fp32 [final state | transition] of every
    rank plus the conv halos."""
    if layout.cp == 1:
        return 0.0
    shape, batch = MixerShape.of(job.model), job.micro_batch
    heads = shape.heads / layout.tp
    if shape.type == "transformer":
        return 2 * job.positions * batch * heads * shape.key * activation_bytes
    if shape.type == "global_linear":  # one all-reduce of the [K × V] state per head
        return batch * heads * shape.key * shape.value * 4
    diagonal = shape.type in ("gla", "mamba2") and not job.model.frame_causal  # frame-causal: the generic path
    transition = 1 if diagonal else shape.key
    halo = layout.cp * batch * (shape.conv_size - 1) * shape.conv_width / layout.tp * activation_bytes
    return layout.cp * batch * heads * shape.key * (shape.value + transition) * 4 + halo


def cp_buffer_bytes(job: Job, layout: Layout, device: Device, layers: float) -> float:
    """What context parallelism keeps per rank beyond its block's own activations, for `layers` kept layers: the
    exchanged buffers and, on CPU, the Transformer's causal mask. Rank r > 0 attends from its s/cp queries over
    the (r + 1)·s/cp keys of blocks 0…r with the causal mask aligned to the lower right
    (`ops.causal_attention`). On CUDA PyTorch's flash kernel applies it without building it; on CPU
    scaled_dot_product_attention materializes it as a dense fp32 additive bias kept for backward: (s/cp)·s values
    per layer on the last rank, O(s²/cp), shared by heads and batch."""
    kept = cp_exchange_bytes(job, layout, device.activation_bytes)
    frame_causal_mask = job.model.frame_causal  # counted with the layer, on every device (`activations.py`)
    if job.model.mixer.type == "transformer" and layout.cp > 1 and device.kernels == "cpu" and not frame_causal_mask:
        kept += job.positions / layout.cp * job.positions * 4
    return kept * layers


def memory(job: Job, layout: Layout, device: Device) -> Memory:
    """The peak over the first and last pipeline stages and over the three moments of a step."""
    candidates = [stage_memory(job, layout, device, stage) for stage in sorted({0, layout.pp - 1})]
    return max(candidates, key=lambda m: m.total)


def stage_memory(job: Job, layout: Layout, device: Device, stage: int) -> Memory:
    params = stage_params(job, layout, stage)
    weights, gradients, optimizer = model_states(job, layout, device, params)
    runtime = device.runtime_gib * 2**30
    local = job.frames / layout.cp
    frames = local * job.micro_batch * job.frame_values * job.frame_bytes if stage == 0 else 0.0
    kept, workspace, cp_buffers = activation_bytes(job, layout, device, stage)
    held = gradients if device.grads_held_between_steps or layout.zero in (1, 2) else 0.0
    start = Memory(runtime, weights, held, optimizer, frames, kept, workspace, cp_buffers, "backward start")
    frame_gradient = local * job.micro_batch * job.frame_values * 4 if job.frame_path == "megatron" else 0.0
    end = Memory(runtime, weights, gradients, optimizer, frames, 0.0, frame_gradient if stage == 0 else 0.0, 0.0,
                 "backward end")
    updated = params / (layout.shards if layout.zero >= 1 else 1)
    step = Memory(runtime, weights, gradients, optimizer, frames, 0.0, updated * device.gradient_bytes, 0.0,
                  "optimizer step")
    return max((start, end, step), key=lambda m: m.total)
