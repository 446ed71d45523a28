"""Chunked gated delta rule, the one CPU kernel behind DeltaNet, Gated DeltaNet and KDA.

Recurrence per head, with `S` a `[K, V]` state and log decays `g_t` (per channel for KDA, shared by all channels
for Gated DeltaNet, zero for DeltaNet):

    S_t = diag(exp(g_t)) S_{t-1}
    S_t = S_t + beta_t k_t (v_t - S_t^T k_t)^T
    o_t = scale S_t^T q_t

Inside a chunk the T sequential rank-one updates collapse, by the WY/UT representation (Yang et al., 2024), into
a unit lower-triangular solve shared by the whole chunk; only the state hand-off between chunks stays a loop.
"""

from __future__ import annotations

import torch

from megageo.ops._chunk import decayed_scores, l2_normalize, merge_chunks, split_chunks


def chunk_gated_delta_rule_any_gate(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None,
    initial_state: torch.Tensor | None,
    output_final_state: bool,
    use_qk_l2norm_in_kernel: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Outputs `[B, T, H, V]` in `v.dtype` and, if asked, the float32 final state `[B, H, K, V]`.

    `q`, `k`: `[B, T, H, K]`; `v`: `[B, T, H, V]`; `beta`: `[B, T, H]`; `g`: log decays `[B, T, H, K]` or
    `[B, T, H, 1]`. `scale` defaults to `K ** -0.5`, as in fla.
    """
    output_dtype, length, key_dim = v.dtype, q.shape[1], q.shape[-1]
    if use_qk_l2norm_in_kernel:
        q, k = l2_normalize(q), l2_normalize(k)
    q, k, v, g, beta = (split_chunks(x) for x in (q, k, v, g, beta.unsqueeze(-1)))
    q = q * (key_dim**-0.5 if scale is None else scale)
    g = g.cumsum(-2)
    g_last = g[..., -1:, :]

    w, u = _ut_transform(decayed_scores(k, k, g), k, v, g, beta)
    intra_chunk_scores = decayed_scores(q, k, g)
    k_to_chunk_end = (k * (g_last - g).exp()).transpose(-1, -2)
    chunk_decays = g_last.exp().transpose(-1, -2)

    state = q.new_zeros(*q.shape[:2], key_dim, v.shape[-1]) if initial_state is None else initial_state.to(q.dtype)
    states_before, corrected_values = [], []
    for w_n, u_n, k_n, decay in zip(w.unbind(2), u.unbind(2), k_to_chunk_end.unbind(2), chunk_decays.unbind(2)):
        value = u_n - w_n @ state
        states_before.append(state)
        corrected_values.append(value)
        state = state * decay + k_n @ value
    o = (q * g.exp()) @ torch.stack(states_before, dim=2) + intra_chunk_scores @ torch.stack(corrected_values, dim=2)

    return merge_chunks(o, length).to(output_dtype), state if output_final_state else None


def _ut_transform(
    key_scores: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per chunk, `w` and `u` such that the values written to the state are `u - w @ S_chunk_start`.

    They solve `(I + L) [w, u] = diag(beta) [exp(g) * k, v]` with `L[i, j] = beta_i k_i . k_j exp(g_i - g_j)` for
    j < i: the triangular system that unrolls the chunk's sequential delta-rule corrections. `key_scores` are the
    decayed `k . k` scores; their diagonal is ignored, the system being unit lower-triangular.
    """
    key_dim = k.shape[-1]
    rhs = beta * torch.cat([k * g.exp(), v], dim=-1)
    wu = torch.linalg.solve_triangular(key_scores * beta, rhs, upper=False, unitriangular=True)
    return wu[..., :key_dim], wu[..., key_dim:]
