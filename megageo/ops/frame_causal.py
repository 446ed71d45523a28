"""Frame-causal gated linear attention: every token reads the state at the end of its own frame.

For spatiotemporal tokens (frames × patches, time-major) a token should see every token of its own frame and of
the frames before, not only the patches that happen to precede it in raster order. With a diagonal decay (GLA's
per-channel gate, SSD's scalar one) that is exact and linear in the length: per frame f of P tokens

    S_f = Diag(exp Σ_{s∈f} g_s) S_{f-1} + Σ_{s∈f} (k_s ⊙ exp Σ_{s<u∈f} g_u) v_sᵀ,    o_t = scale · q_tᵀ S_{f(t)}

— one product over the frame's tokens for its write, one diagonal multiply-add per frame, and one read for its
outputs. Only sums of log decays over later positions are exponentiated, so nothing overflows. The delta-rule
family has no such form: its state after a frame is a product of non-commuting (I − β k kᵀ) updates, so every
token of a frame would need its own sequential pass over that frame (see `megageo.model.tokens`).
"""

from __future__ import annotations

import torch

from megageo.ops.precision import upcast


def frame_causal_gla(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, frame_size: int, scale: float,
    initial_state: torch.Tensor | None = None, output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`q`, `k` `[B, T, H, K]`, `v` `[B, T, H, V]`, log decays `g` `[B, T, H, K]` or `[B, T, H, 1]` (≤ 0), with
    T a multiple of `frame_size` → outputs `[B, T, H, V]` in `v.dtype` and, if asked, the final state
    `[B, H, K, V]` in the compute dtype (float32, float64 for float64 inputs), fla's conventions otherwise."""
    batch, length, heads, _ = q.shape
    if length % frame_size:
        raise ValueError(f"{length} tokens are not a whole number of frames of {frame_size}")
    frames, output_dtype = length // frame_size, v.dtype

    def per_frame(x: torch.Tensor) -> torch.Tensor:
        return upcast(x).unflatten(1, (frames, frame_size))

    q, k, v, g = (per_frame(x) for x in (q, k, v, g))
    decay_after = g.flip(2).cumsum(2).flip(2) - g  # Σ of the frame's log decays after each position
    writes = torch.einsum("bfphk,bfphv->bfhkv", k * decay_after.exp(), v)
    frame_decays = (decay_after[:, :, 0] + g[:, :, 0]).exp().unsqueeze(-1)  # [B, F, H, K or 1, 1]
    state = writes.new_zeros(batch, heads, k.shape[-1], v.shape[-1]) if initial_state is None else upcast(initial_state)
    states = []
    for decay, write in zip(frame_decays.unbind(1), writes.unbind(1)):
        state = state * decay + write
        states.append(state)
    outputs = scale * torch.einsum("bfphk,bfhkv->bfphv", q, torch.stack(states, dim=1))
    return outputs.flatten(1, 2).to(output_dtype), state if output_final_state else None
