"""Let Megatron-core's tensor- and sequence-parallel layers allocate on CPU when CUDA is absent.

Megatron allocates communication buffers and parameters on `torch.cuda.current_device()`. Without CUDA that
call fails; returning the string "cpu" instead is all its TP/SP code paths need on gloo. The patch is applied
only when no GPU is present, so the CUDA path is untouched.
"""

from __future__ import annotations

import torch

_applied = False


def apply_cpu_shim() -> None:
    global _applied
    if _applied or torch.cuda.is_available():
        return
    torch.cuda.current_device = lambda: "cpu"  # type: ignore[assignment]
    _applied = True
