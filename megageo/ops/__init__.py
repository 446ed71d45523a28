"""Sequence-mixer kernels: fla's chunk ops (and mamba-ssm's SSD scan) on CUDA, megageo's own chunked PyTorch
kernels everywhere else.

Conventions shared by every recurrent op, so megageo's CPU code is a drop-in backend for fla:
- layout `[B, T, H, D]` (time-major inside the batch); per-head gates and betas `[B, T, H]`;
- `scale` multiplies the queries and defaults to `K ** -0.5`;
- `initial_state` is the `[B, H, K, V]` state before step 0 and, with `output_final_state=True`, the float32 state
  after the last step is returned next to the outputs `o`, so a sequence can be processed in pieces (context
  parallelism, incremental inference);
- the CPU kernels compute in float32 (float64 for float64 inputs) and return `o` in the dtype of `v`.
"""

from megageo.ops._chunk import CHUNK_SIZE, l2_normalize
from megageo.ops.attention import causal_attention, frame_causal_attention
from megageo.ops.delta_rule import chunk_delta_rule
from megageo.ops.frame_causal import frame_causal_gla
from megageo.ops.gated_delta_rule import chunk_gated_delta_rule
from megageo.ops.gla import chunk_gla
from megageo.ops.global_linear import global_linear_attention
from megageo.ops.kda import chunk_kda
from megageo.ops.ssd import mamba_chunk_scan_combined

__all__ = [
    "CHUNK_SIZE",
    "causal_attention",
    "chunk_delta_rule",
    "chunk_gated_delta_rule",
    "chunk_gla",
    "chunk_kda",
    "frame_causal_attention",
    "frame_causal_gla",
    "global_linear_attention",
    "l2_normalize",
    "mamba_chunk_scan_combined",
]
