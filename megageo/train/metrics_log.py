"""What a run reports: `metrics.jsonl` (one JSON object per record), TensorBoard scalars, and peak memory.

Only rank 0 writes. Training records carry `step, loss, lr, grad_norm, tokens_per_s, tflops, peak_mem_gb,
elapsed_s`; evaluation records carry `split: "val"`, `step` and `val_loss`. Lines are flushed as written, so
a run killed by its walltime keeps every record up to its last step.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import torch

METRICS = "metrics.jsonl"


def peak_memory_gb() -> float:
    """Peak allocated CUDA memory, or the process's peak resident set on CPU (Linux reports KiB)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def resident_memory_gb(pid: int | str = "self") -> float:
    """A process's resident set now (Linux; 0 once it has exited): what set-up holds apart from what a step adds,
    or what a benchmark's ranks hold together."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return pages * resource.getpagesize() / 1e9


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class MetricsLog:
    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.file = open(run_dir / METRICS, "a")
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        prefix = record.get("split", "train")
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            self.writer.close()
