"""Non-causal (global) linear attention: every token reads one state summed over the whole sequence.

`o_t = scale · φ(q_t)ᵀ Σ_s φ(k_s) v_sᵀ` with φ = elu + 1 (positive features, Katharopoulos et al., 2020): the
softmax-free dense attention φ(Q)(φ(K)ᵀV) in linear time and memory. Because the state is a plain sum, a
sequence split across ranks needs only that sum: `reduce_state` (an all-reduce over the context-parallel group)
is applied to the local state before it is read.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from megageo.ops.precision import upcast


def positive_features(x: torch.Tensor) -> torch.Tensor:
    return F.elu(upcast(x)) + 1


def global_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
    reduce_state: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """`q`, `k` `[B, T, H, K]`, `v` `[B, T, H, V]` → `[B, T, H, V]` in `v.dtype`; φ is applied here."""
    state = torch.einsum("bthk,bthv->bhkv", positive_features(k), upcast(v))
    if reduce_state is not None:
        state = reduce_state(state)
    return (scale * torch.einsum("bthk,bhkv->bthv", positive_features(q), state)).to(v.dtype)
