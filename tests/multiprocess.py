"""Run a function on N gloo ranks (processes on this machine) and collect what each returns.

The ranks are kept alive for the whole test session, one set per world size, and each call hands them its function:
the multi-rank cases then pay for starting Python and importing torch, DeepSpeed and Megatron once per world size,
not once per case (measured here: 14 s to start 2 ranks, 23 s for 4, against a few seconds of work in many
cases). Each call runs as a fresh spawn would: the caller's environment and working directory, a new rendezvous
port, and no process group left from the call before. A call that fails takes its ranks down with it (some of
them may be stuck in a collective), and the next call starts new ones.
"""

from __future__ import annotations

import atexit
import os
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp

from megageo.parallel.launch_env import free_port


def _serve(rank: int, world_size: int, tasks, results) -> None:
    """A rank's loop: run each task it is handed and report its value or traceback; leave no process group and
    no change of torch's thread count behind."""
    import torch

    threads = torch.get_num_threads()
    while (task := tasks.get()) is not None:
        fn, args, environment, cwd, port = task
        os.environ.clear()
        os.environ.update(environment, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), OMP_NUM_THREADS="1")
        os.chdir(cwd)
        try:
            results.put((rank, fn(*args), None))
        except Exception:  # reported to the caller, which fails the test with this rank's traceback
            results.put((rank, None, traceback.format_exc()))
        else:
            from megageo.parallel import groups

            groups.shutdown()
            torch.set_num_threads(threads)


class _Ranks:
    """`world_size` processes waiting for tasks."""

    def __init__(self, world_size: int):
        context = mp.get_context("spawn")
        self.world_size = world_size
        self.tasks = [context.Queue() for _ in range(world_size)]
        self.results = context.Queue()
        self.processes = [context.Process(target=_serve, args=(rank, world_size, self.tasks[rank], self.results))
                          for rank in range(world_size)]
        for process in self.processes:
            process.start()

    def run(self, fn: Callable[..., Any], args: tuple, timeout_s: float) -> list[Any]:
        port = free_port()
        for tasks in self.tasks:
            tasks.put((fn, args, dict(os.environ), os.getcwd(), port))
        results: dict[int, Any] = {}
        deadline = time.monotonic() + timeout_s
        while len(results) < self.world_size:
            try:
                rank, value, error = self.results.get(timeout=2)
            except queue_module.Empty:
                silent = [r for r, p in enumerate(self.processes) if r not in results and p.exitcode is not None]
                if silent:
                    raise RuntimeError(f"rank {silent[0]} exited with code {self.processes[silent[0]].exitcode} "
                                       "without a result") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ranks {sorted(set(range(self.world_size)) - set(results))} gave no result "
                                       f"within {timeout_s:.0f} s") from None
                continue
            if error is not None:
                raise RuntimeError(f"rank {rank} failed:\n{error}")
            results[rank] = value
        return [results[rank] for rank in range(self.world_size)]

    def close(self) -> None:
        for tasks in self.tasks:
            tasks.put(None)
        for process in self.processes:
            process.join(30)

    def kill(self) -> None:
        for process in self.processes:
            process.kill()
            process.join(60)


_RANKS: dict[int, _Ranks] = {}


@atexit.register
def _close_all() -> None:
    while _RANKS:
        _RANKS.popitem()[1].close()


def run_ranks(fn: Callable[..., Any], world_size: int, *args: Any, timeout_s: float = 900) -> list[Any]:
    """Each rank's return value, in rank order. A rank that raises, dies without reporting (a crash, a kill) or
    outlives `timeout_s` fails the caller at once instead of leaving the other ranks waiting in a collective."""
    if world_size not in _RANKS:
        _RANKS[world_size] = _Ranks(world_size)
    ranks = _RANKS[world_size]
    try:
        return ranks.run(fn, args, timeout_s)
    except BaseException:
        del _RANKS[world_size]
        ranks.kill()
        raise
