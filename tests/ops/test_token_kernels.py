"""The token mixers' kernels against dense references written from their definitions (float64, quadratic):
frame-causal GLA/SSD (a dense masked decay matrix), frame-causal softmax attention (an explicit softmax over a
block-causal mask) and global linear attention (φ(Q)(φ(K)ᵀV))."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from megageo.ops import frame_causal_attention, frame_causal_gla, global_linear_attention

B, H, K, V = 2, 3, 5, 4


def _inputs(length: int, shared_decay: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return {"q": randn(B, length, H, K), "k": randn(B, length, H, K), "v": randn(B, length, H, V),
            "g": F.logsigmoid(randn(B, length, H, 1 if shared_decay else K)), "state": randn(B, H, K, V)}


def dense_frame_causal(q, k, v, g, frame_size: int, scale: float, state: torch.Tensor):
    """o_t = scale · Σ_{s in a frame ≤ t's} Σ_κ q_tκ k_sκ exp(G_{e(t)κ} − G_sκ) v_s  +  scale · (q_t ⊙ exp G_{e(t)})ᵀ S₀,
    with G the cumulative log decay and e(t) the last token of t's frame."""
    length = q.shape[1]
    G = g.expand_as(q).cumsum(1)
    end = (torch.arange(length) // frame_size + 1) * frame_size - 1
    G_end = G[:, end]  # [B, T, H, K]: the cumulative decay at each token's frame end
    decay = (G_end[:, :, None] - G[:, None]).exp()  # [B, T(query), T(key), H, K]
    visible = (torch.arange(length)[None, :] <= end[:, None]).double()  # key s visible from query t
    scores = torch.einsum("bthk,bshk,btshk->bths", q, k, decay) * visible[None, :, None, :]
    outputs = torch.einsum("bths,bshv->bthv", scores, v) + torch.einsum("bthk,bhkv->bthv", q * G_end.exp(), state)
    final = torch.einsum("bshk,bshv->bhkv", k * (G[:, -1:] - G).exp(), v) + G[:, -1, :, :, None].exp() * state
    return scale * outputs, final


@pytest.mark.parametrize("shared_decay", [False, True], ids=["per-channel decay (GLA)", "scalar decay (SSD)"])
@pytest.mark.parametrize("frame_size", [1, 7, 12])
def test_frame_causal_gla_equals_the_dense_masked_reference(shared_decay: bool, frame_size: int) -> None:
    inputs = _inputs(3 * 12 + (0 if frame_size != 7 else 6), shared_decay)  # 36 or 42 tokens: whole frames
    expected, expected_final = dense_frame_causal(inputs["q"], inputs["k"], inputs["v"], inputs["g"], frame_size,
                                                  0.4, inputs["state"])
    out, final = frame_causal_gla(inputs["q"], inputs["k"], inputs["v"], inputs["g"], frame_size, 0.4,
                                  inputs["state"], output_final_state=True)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final, expected_final, rtol=1e-12, atol=1e-12)


def test_frame_causal_gla_with_one_token_a_frame_is_causal_gla() -> None:
    from megageo.ops import chunk_gla

    inputs = _inputs(70, shared_decay=False)
    expected, expected_final = chunk_gla(inputs["q"], inputs["k"], inputs["v"], inputs["g"], 0.4, inputs["state"], True)
    out, final = frame_causal_gla(inputs["q"], inputs["k"], inputs["v"], inputs["g"], 1, 0.4, inputs["state"], True)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(final, expected_final, rtol=1e-10, atol=1e-12)


def test_frame_causal_attention_equals_an_explicit_masked_softmax() -> None:
    generator = torch.Generator().manual_seed(1)
    frame_size, frames, query_frames = 4, 5, 2  # the queries are the last two frames, as on a CP rank
    q = torch.randn(B, query_frames * frame_size, H, K, generator=generator, dtype=torch.float64)
    k, v = (torch.randn(B, frames * frame_size, H, K, generator=generator, dtype=torch.float64) for _ in range(2))
    scores = torch.einsum("bthk,bshk->bhts", q, k) * K**-0.5
    query_frame = torch.arange(frames - query_frames, frames).repeat_interleave(frame_size)
    key_frame = torch.arange(frames).repeat_interleave(frame_size)
    scores = scores.masked_fill(key_frame[None, :] > query_frame[:, None], float("-inf"))
    expected = torch.einsum("bhts,bshv->bthv", scores.softmax(-1), v)
    torch.testing.assert_close(frame_causal_attention(q, k, v, frame_size), expected, rtol=1e-12, atol=1e-12)


def test_global_linear_attention_equals_dense_feature_attention() -> None:
    inputs = _inputs(33, shared_decay=False)
    phi_q, phi_k = F.elu(inputs["q"]) + 1, F.elu(inputs["k"]) + 1
    dense = torch.einsum("bthk,bshk->bhts", phi_q, phi_k)  # φ(Q) φ(K)ᵀ, T × T per head, no mask
    expected = 0.25 * torch.einsum("bhts,bshv->bthv", dense, inputs["v"])
    actual = global_linear_attention(inputs["q"], inputs["k"], inputs["v"], 0.25)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
