"""Process groups: torch.distributed plus Megatron-core's `parallel_state` (TP, CP, PP, DP).

The backend follows the device (nccl on CUDA, gloo on CPU); ranks come from whatever launched the job
(see `megageo.parallel.launch_env`).
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from megatron.core import parallel_state

from megageo.parallel.cpu_shim import apply_cpu_shim
from megageo.parallel.launch_env import free_port


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def initialize(tensor_parallel: int = 1, pipeline_parallel: int = 1, timeout_s: int = 600,
               init_method: str | None = None, context_parallel: int = 1) -> None:
    """Join the default group (env:// rendezvous unless `init_method` says otherwise) and carve it into
    TP × CP × DP × PP, in Megatron's default order (tp-cp-ep-dp-pp: TP ranks adjacent, then CP)."""
    apply_cpu_shim()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        world = {} if init_method is None else {"init_method": init_method, "rank": 0, "world_size": 1}
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s), **world)
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=tensor_parallel, pipeline_model_parallel_size=pipeline_parallel,
        context_parallel_size=context_parallel,
    )


def initialize_single_process() -> None:
    """A world of one (CLI tools and tests that run the model without a launcher). It rendezvous on a port the
    kernel picks and leaves `os.environ` alone, so child processes never inherit a port this process holds."""
    initialize(1, 1, init_method=f"tcp://127.0.0.1:{free_port()}")


def tp_size() -> int:
    return parallel_state.get_tensor_model_parallel_world_size()


def tp_rank() -> int:
    return parallel_state.get_tensor_model_parallel_rank()


def shutdown() -> None:
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool) -> bool:
    """Whether `flag` holds on any rank (a collective over the world: every rank must call it)."""
    value = torch.tensor([int(flag)], device=device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
