"""Run a function on N gloo ranks (spawned processes on this machine) and collect what each returns."""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, world_size: int, port: int, fn: Callable, args: tuple, queue) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1",
    )
    try:
        queue.put((rank, fn(*args), None))
    except Exception:  # reported to the parent, which fails the test with the worker's traceback
        queue.put((rank, None, traceback.format_exc()))


def run_ranks(fn: Callable[..., Any], world_size: int, *args: Any, timeout_s: float = 600) -> list[Any]:
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = free_port()
    processes = [
        context.Process(target=_entry, args=(rank, world_size, port, fn, args, queue)) for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    results: dict[int, Any] = {}
    for _ in processes:
        rank, value, error = queue.get()
        if error is not None:
            for process in processes:
                process.kill()
            raise RuntimeError(f"rank {rank} failed:\n{error}")
        results[rank] = value
    for process in processes:
        process.join(timeout_s)
    return [results[rank] for rank in range(world_size)]
