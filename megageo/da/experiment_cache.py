"""The twin's experiments kept as each finishes, so that a run stopped by a walltime, a fault or Ctrl-C goes on
where it stopped. A twin of 100 cycles and three truths takes hours on a CPU (on the 2-core box the tuning truth
took 51 min with other jobs on the cores, each scored truth 30 min at 16 sampler steps) and PBS ends a job at its
walltime; without this every finished truth was lost with the unfinished one.

Each experiment's results are pickled under OUT/partial beside a fingerprint of everything that made them (the
settings, checkpoint, step, store and sampler). A rerun into the same OUT with the same fingerprint loads them; with
any other it computes them again. The folder is removed once the report is written. The files are this program's
own, read back only from the folder it writes them to."""

from __future__ import annotations

import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from megageo.io.atomic import atomic_path

Result = TypeVar("Result")


class ExperimentCache:
    def __init__(self, folder: Path, fingerprint: str):
        self.folder, self.fingerprint = folder, fingerprint
        self.reused_seconds = 0.0
        """What the reused experiments took when they ran: the report's time in all counts them."""

    def get_or_run(self, name: str, run: Callable[[], Result]) -> Result:
        """`run()`'s result, from `folder/name.pkl` when a run of the same fingerprint left it there."""
        path = self.folder / f"{name}.pkl"
        if path.is_file():
            fingerprint, seconds, result = pickle.loads(path.read_bytes())
            if fingerprint == self.fingerprint:
                print(f"{name}: reusing {path} from an interrupted run of the same settings")
                self.reused_seconds += seconds
                return result
        started = time.monotonic()
        result = run()
        with atomic_path(path) as temporary:
            temporary.write_bytes(pickle.dumps((self.fingerprint, time.monotonic() - started, result)))
        return result

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
