"""What a rank works with: its memory, matrix throughput, how many bytes it keeps per value, and its links.

A profile names the software path as well as the chip, because the same model keeps different tensors on each:
`cpu-fp32` is megageo's chunked PyTorch kernels in float32 (what runs, and is measured, on a CPU box), the GPU
profiles are fla / mamba-ssm / flash-attention kernels with bf16 weights and activations under DeepSpeed.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class Device:
    name: str
    memory_gib: float
    peak_tflops: float
    """Dense matrix throughput at the training precision."""
    efficiency: float
    """Fraction of `peak_tflops` a training step sustains (model FLOPs utilisation)."""
    activation_bytes: int
    """Bytes per activation value: 2 for bf16 training, 4 for fp32."""
    kernels: str
    """`cpu` (megageo's chunked PyTorch kernels) or `fused` (fla, mamba-ssm, flash attention)."""
    weight_bytes: int
    """Working weights per parameter (bf16: 2; fp32: 4)."""
    gradient_bytes: int
    """Gradient bytes per parameter. DeepSpeed's bf16 path keeps bf16 gradients and an fp32 accumulation buffer
    (2 + 4, the `2_grads_16bit + 4_grads_32bit` of `estimate_zero2_model_states_mem_needs`); fp32 keeps 4."""
    optimizer_bytes: int
    """Adam's state per parameter: two fp32 moments (8) plus the fp32 master copy (4) — DeepSpeed holds the master
    even in fp32 training once ZeRO partitions the optimizer (a clone of the rank's partition), so 12 in both."""
    runtime_gib: float
    """Memory that is not tensors: CUDA context, NCCL and cuBLAS workspaces, allocator slack. 0 for `cpu-fp32`,
    whose measurements count tensor bytes only."""
    grads_held_between_steps: bool
    """Whether gradient buffers exist during the forward pass. DeepSpeed's bf16 and ZeRO optimizers keep flat
    fp32 gradient buffers for the whole run; the plain fp32 path (ZeRO-0) frees `.grad` after each step."""


DEVICES = {
    "a100-bf16": Device("A100 (bf16)", 40.0, 312.0, 0.35, 2, "fused", 2, 6, 12, 1.5, True),
    "h100-bf16": Device("H100 SXM (bf16)", 80.0, 989.0, 0.35, 2, "fused", 2, 6, 12, 1.5, True),
    "cpu-fp32": Device("CPU (fp32)", 24.0, 0.2, 1.0, 4, "cpu", 4, 4, 12, 0.0, False),
}
"""Peak bf16 dense throughput: NVIDIA's A100 (312 TFLOPS) and H100 SXM (989 TFLOPS) datasheets; the A100 figure
is also ALCF's Polaris hardware overview. 35 % of peak is a typical well-tuned training MFU (Megatron-LM reports
38-52 % for GPT models with TP and PP, Narayanan et al., 2021); the linear-attention kernels reach less, so use
`--efficiency` to match a measured run. The CPU profile's throughput only orders layouts; its memory is validated
by tests/plan against this machine."""


@dataclass(frozen=True)
class Interconnect:
    name: str
    intra_node_gbps: float
    """Bus bandwidth per GPU of a collective whose ranks share a node (GB/s, 1e9 bytes)."""
    inter_node_gbps: float
    """Bus bandwidth per GPU once a collective crosses nodes: the node's NIC bandwidth shared by its GPUs."""


INTERCONNECTS = {
    "polaris": Interconnect("Polaris: NVLink inside a node, 2 × Slingshot-11 per 4 GPUs", 150.0, 12.5),
    "nvlink": Interconnect("DGX A100: NVSwitch inside a node, one 200 Gb/s HDR InfiniBand NIC per GPU", 230.0, 25.0),
    "ethernet": Interconnect("NVLink inside a node, one 100 Gb/s Ethernet NIC per node of 4 GPUs", 150.0, 3.1),
    "cpu": Interconnect("processes on one CPU box (shared memory, gloo)", 5.0, 5.0),
}
"""Polaris (ALCF machine overview): 4 A100 per node, each pair joined by 4 NVLink-3 links (NV4, 100 GB/s each way;
600 GB/s of NVLink per GPU), and 2 Slingshot-11 adapters of 200 Gb/s (25 GB/s) per node, so 12.5 GB/s per GPU
when all four talk across nodes. 150 GB/s is a conservative NCCL all-reduce bus bandwidth on 4 NVLink-connected
A100s (NCCL's busbw convention: a ring all-reduce of n bytes moves 2(n−1)/n bytes per GPU). DGX A100: NVSwitch
(NCCL all-reduce busbw ≈ 230 GB/s on 8 GPUs) and 8 HDR NICs per node."""
