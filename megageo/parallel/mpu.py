"""The `mpu` object DeepSpeed asks about the layout, answered from Megatron-core's `parallel_state`.

DeepSpeed uses it to reduce gradients over data-parallel ranks only, to count tensor-parallel parameters once
in the gradient norm, and to name ZeRO checkpoint shards by model-parallel rank (as in Megatron-DeepSpeed).
Its "model parallel" group is the tensor-parallel group: megageo's pipeline runs inside DeepSpeed's own
`PipelineModule`, which brings its own grid for the pipeline axis.
"""

from __future__ import annotations

import torch.distributed as dist
from megatron.core import parallel_state as ps


def get_model_parallel_rank() -> int:
    return ps.get_tensor_model_parallel_rank()


def get_model_parallel_world_size() -> int:
    return ps.get_tensor_model_parallel_world_size()


def get_model_parallel_group() -> dist.ProcessGroup:
    return ps.get_tensor_model_parallel_group()


get_tensor_model_parallel_rank = get_model_parallel_rank
get_tensor_model_parallel_world_size = get_model_parallel_world_size
get_tensor_model_parallel_group = get_model_parallel_group


def get_data_parallel_rank() -> int:
    return ps.get_data_parallel_rank()


def get_data_parallel_world_size() -> int:
    return ps.get_data_parallel_world_size()


def get_data_parallel_group() -> dist.ProcessGroup:
    return ps.get_data_parallel_group()


def get_pipeline_model_parallel_rank() -> int:
    return ps.get_pipeline_model_parallel_rank()


def get_pipeline_model_parallel_world_size() -> int:
    return ps.get_pipeline_model_parallel_world_size()


def get_pipeline_model_parallel_group() -> dist.ProcessGroup:
    return ps.get_pipeline_model_parallel_group()
