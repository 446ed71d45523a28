"""Communication volume and predicted step time of one layout.

Compute: the analytic forward FLOPs per frame of `megageo.model.flops` × 3 for training (backward costs twice the
forward), + 1 forward under full recompute, spread over all ranks (TP splits the matrices, CP the sequence, PP the
layers, DP the batch), at the device's peak × efficiency. Two imbalances stretch it: the 1F1B pipeline bubble,
(pp − 1) idle micro-batch slots per m (Narayanan et al., 2021), and causal attention under CP, where the last
block attends to every earlier one: its attention work is (2 − 1/cp) × the average.

Communication, in bytes each rank sends per step (NCCL's bus-bandwidth convention: a ring all-reduce of n bytes
over g ranks moves 2(g − 1)/g · n per rank, an all-gather or reduce-scatter (g − 1)/g · n):
- TP: Megatron's two all-reduces per layer forward (one after the mixer, one after the MLP; an all-gather and a
  reduce-scatter under SP, the same volume) and two in backward, of the rank's [s/cp, b, h] activations; a
  recomputed forward repeats its two;
- CP: per layer, the all-gather of keys and values (Transformer, 2·s·b·h_kv) or of [final state | transition]
  (linear mixers, cp·b·H·K·(V + K) in fp32), and in backward the all-reduce of its gradient;
- DP × CP: the gradients once per step, 2(g − 1)/g · Ψ for ZeRO 0-2 (all-reduce, or reduce-scatter and
  all-gather of the updated weights), 3(g − 1)/g · Ψ for ZeRO-3 (weights gathered in forward and in backward),
  as in the ZeRO paper (§7);
- PP: each micro-batch's activations forward and their gradient back across a stage boundary.
Ranks are ordered TP, CP, DP, PP (Megatron's tp-cp-ep-dp-pp), so a group of ranks spanning no more than a node's
GPUs runs at the intra-node bandwidth and any other at the inter-node one. Communication is not assumed to overlap
compute: the prediction is an upper bound for a well-overlapped engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from megageo.plan.device import Device, Interconnect
from megageo.plan.job import Job
from megageo.plan.memory import Layout, cp_exchange_bytes, micro_batches, stage_params


@dataclass(frozen=True)
class Cost:
    compute_s: float
    bubble: float
    """Pipeline slots idle per step, as a fraction of the step."""
    volume: dict[str, float]
    """Bytes each rank sends per step, by group: `tp`, `cp`, `dp`, `pp`."""
    communication_s: dict[str, float]

    @property
    def step_s(self) -> float:
        return self.compute_s / (1 - self.bubble) + sum(self.communication_s.values())


def ring(ranks: int, all_reduce: bool) -> float:
    """Bus bytes per rank per buffer byte of a ring collective."""
    return (2.0 if all_reduce else 1.0) * (ranks - 1) / ranks if ranks > 1 else 0.0


def compute_seconds(job: Job, layout: Layout, device: Device) -> float:
    from megageo.model.flops import mixer_kernel_flops

    passes = 4 if layout.recompute else 3
    per_frame = job.flops_per_frame
    if job.model.mixer.type == "transformer" and layout.cp > 1:
        attention = job.num_layers * mixer_kernel_flops(job.model, job.positions) * job.tokens_per_frame
        per_frame += attention * (1 - 1 / layout.cp)  # the last block's (2 − 1/cp) × average attention
    frames_per_step = job.config.train.global_batch_size * job.frames
    return passes * per_frame * frames_per_step / layout.world / (device.peak_tflops * 1e12 * device.efficiency)


def cost(job: Job, layout: Layout, device: Device, interconnect: Interconnect, gpus_per_node: int) -> Cost:
    m = micro_batches(job, layout)
    act = device.activation_bytes
    local = job.positions / layout.cp * job.micro_batch
    layers = job.num_layers / layout.pp
    sublayers = 2 if job.model.mixer.has_mlp else 1
    forwards = 2 if layout.recompute else 1
    residual = local * job.model.hidden_size * act
    volume = {
        "tp": m * layers * sublayers * (forwards + 1) * ring(layout.tp, True) * residual,
        "cp": m * layers * (forwards * ring(layout.cp, False) + ring(layout.cp, True)) * cp_exchange_bytes(job, layout, act),
        "dp": stage_params(job, layout, 0) * device.weight_bytes * (3 if layout.zero == 3 else 2)
        * ring(layout.shards, False),
        "pp": 2 * m * residual if layout.pp > 1 else 0.0,
    }
    spans = {"tp": layout.tp, "cp": layout.tp * layout.cp, "dp": layout.tp * layout.cp * layout.dp,
             "pp": layout.world}
    seconds = {group: volume[group] / (1e9 * (interconnect.intra_node_gbps if spans[group] <= gpus_per_node
                                              else interconnect.inter_node_gbps)) for group in volume}
    bubble = (layout.pp - 1) / (m + layout.pp - 1)
    return Cost(compute_seconds(job, layout, device), bubble, volume, seconds)
