"""The precision rule of every CPU kernel and of the mixers' fp32 islands: float64 stays float64, everything
else computes in float32.

Training runs in fp32 or bf16, where float32 arithmetic is the point. Parity and oracle tests run in float64 so
that layouts can be compared to 1e-10; they must not be rounded to float32 on the way.
"""

from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def upcast(x: torch.Tensor) -> torch.Tensor:
    """`x` in its compute dtype (float32, or float64 for float64 inputs)."""
    return x.to(compute_dtype(x.dtype))
