"""The `mpu` object DeepSpeed asks about the layout, answered from Megatron-core's `parallel_state`.

DeepSpeed uses it to reduce gradients over data-parallel ranks only, to count tensor-parallel parameters once
in the gradient norm, and to name ZeRO checkpoint shards by model-parallel rank (as in Megatron-DeepSpeed).
Under context parallelism its "data-parallel" group is Megatron's DP×CP group: CP ranks hold the same weights
and each computes part of every gradient, so DeepSpeed's reduction (and ZeRO's partitioning) spans both, as
Megatron's own distributed optimizer does (`with_context_parallel=True`).
Its "model parallel" group is the tensor-parallel group: megageo's pipeline runs inside DeepSpeed's own
`PipelineModule`, which brings its own grid for the pipeline axis. The module itself is the object passed.
"""

from __future__ import annotations

from functools import partial

from megatron.core import parallel_state as ps

get_model_parallel_rank = get_tensor_model_parallel_rank = ps.get_tensor_model_parallel_rank
get_data_parallel_rank = partial(ps.get_data_parallel_rank, with_context_parallel=True)
get_pipeline_model_parallel_rank = ps.get_pipeline_model_parallel_rank

get_model_parallel_world_size = get_tensor_model_parallel_world_size = ps.get_tensor_model_parallel_world_size
get_data_parallel_world_size = partial(ps.get_data_parallel_world_size, with_context_parallel=True)
get_pipeline_model_parallel_world_size = ps.get_pipeline_model_parallel_world_size

get_model_parallel_group = get_tensor_model_parallel_group = ps.get_tensor_model_parallel_group
get_data_parallel_group = partial(ps.get_data_parallel_group, with_context_parallel=True)
get_pipeline_model_parallel_group = ps.get_pipeline_model_parallel_group
