"""Run a function on N gloo ranks (spawned processes on this machine) and collect what each returns."""

from __future__ import annotations

import os
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp

from megageo.parallel.launch_env import free_port


def _entry(rank: int, world_size: int, port: int, fn: Callable, args: tuple, queue) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1",
    )
    try:
        queue.put((rank, fn(*args), None))
    except Exception:  # reported to the parent, which fails the test with the worker's traceback
        queue.put((rank, None, traceback.format_exc()))


def run_ranks(fn: Callable[..., Any], world_size: int, *args: Any, timeout_s: float = 900) -> list[Any]:
    """Each rank's return value, in rank order. A rank that raises, dies without reporting (a crash, a kill) or
    outlives `timeout_s` fails the caller at once instead of leaving the other ranks waiting in a collective."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [
        context.Process(target=_entry, args=(rank, world_size, port, fn, args, queue)) for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    results: dict[int, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(results) < world_size:
            try:
                rank, value, error = queue.get(timeout=2)
            except queue_module.Empty:
                silent = [rank for rank, p in enumerate(processes) if rank not in results and p.exitcode is not None]
                if silent:
                    raise RuntimeError(f"rank {silent[0]} exited with code {processes[silent[0]].exitcode} "
                                       "without a result") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ranks {sorted(set(range(world_size)) - set(results))} gave no result "
                                       f"within {timeout_s:.0f} s") from None
                continue
            if error is not None:
                raise RuntimeError(f"rank {rank} failed:\n{error}")
            results[rank] = value
    finally:
        for process in processes:
            if process.is_alive() and len(results) < world_size:
                process.kill()
            process.join(60)
    return [results[rank] for rank in range(world_size)]
