"""The twin's cycling baselines side by side. Every LETKF, EnKF and free run of one experiment starts from the same
ensemble and reads the same observations, so each can run in a worker process of its own, one thread each. That
pays where a node has more cores than one run can use: on a 32-core Polaris node the tuning truth's twelve runs go
at once. On the 2-core box it does not (measured: the twelve 19-cycle tuning runs took 338 s in two workers and
324 s in one two-thread process; a 6-hour step of 20 members takes 1.40 s on one thread and 0.99 s on two, and the
LETKF's batched eigendecompositions keep both threads busy)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from types import TracebackType

import numpy as np
import torch

from megageo.da.ensemble_filters import FilterRun, ShallowWaterEnsemble, run_filter


def usable_cores() -> int:
    """The cores this process may run on (a batch scheduler's allocation, not the node's count)."""
    return len(os.sched_getaffinity(0))


class FilterPool:
    """Runs filter runs in `workers` spawned one-thread processes, or in this one (with a progress bar each) when
    `workers` is 1. Spawned, not forked: the parent's OpenMP threads do not survive a fork."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> FilterPool:
        if self.workers > 1:
            self.executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                initializer=torch.set_num_threads, initargs=(1,))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def run(self, runs: Mapping[str, FilterRun], ensemble: ShallowWaterEnsemble, start: torch.Tensor,
            observations: np.ndarray, kept: np.ndarray, error_std: float, desc: str) -> dict[str, np.ndarray]:
        """Each run's members at the frames `kept` [K, N, H, W], by key, in the order of `runs`."""
        from tqdm import tqdm

        if self.executor is None:
            return {key: run_filter(ensemble, start, observations, kept, run, error_std, f"{run.label}, {desc}")
                    for key, run in runs.items()}
        futures = {self.executor.submit(run_filter, ensemble, start, observations, kept, run, error_std): key
                   for key, run in runs.items()}
        done = {futures[future]: future.result()
                for future in tqdm(as_completed(futures), total=len(futures), desc=f"filters, {desc}", unit="run")}
        return {key: done[key] for key in runs}
