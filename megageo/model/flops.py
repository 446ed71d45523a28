"""Analytic forward FLOPs per token (one frame, or one patch of a frame for a token model), used by `model summary`
and the benchmark's TFLOPS.

Counting rules (a multiply-add is 2 FLOPs; training = 3 × forward, as backward costs twice the forward):
- every weight of a linear layer applied to each token costs 2 FLOPs; the head runs on the last frame's positions
  only (one for a frame model, P for a token model), so its cost is scaled by P / sequence length;
- depthwise short conv: 2 · kernel · channels; norms, activations and gates are ignored (memory-bound, < 1 %);
- softmax attention (causal): scores and weighted values each cost 2 · d per visible key, T/2 keys on average
  → 2 · T · d per head;
- global (non-causal) linear attention: the state write 2KV and its read 2KV per head;
- chunked linear recurrences with chunk C, key width K and value width V per head:
  output from the carried state 2KV, state update 2KV, intra-chunk scores 2CK, intra-chunk values 2CV;
  the delta rules add the WY representation: KKᵀ within the chunk 2CK, W = A·K 2CK, U = A·V 2CV, the
  correction U − W·S 2KV, and the triangular solve C²/3 per token. GLA, KDA and Mamba2 gates are elementwise.
"""

from __future__ import annotations

from megageo.config import ModelConfig

CHUNK = 64


def _linear_recurrence(key_dim: int, value_dim: int, chunk: int = CHUNK) -> float:
    return 4 * key_dim * value_dim + 2 * chunk * (key_dim + value_dim)


def _delta_recurrence(key_dim: int, value_dim: int, chunk: int = CHUNK) -> float:
    wy = 2 * chunk * key_dim + 2 * chunk * key_dim + 2 * chunk * value_dim + 2 * key_dim * value_dim + chunk**2 / 3
    return _linear_recurrence(key_dim, value_dim, chunk) + wy


def mixer_kernel_flops(config: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token of the recurrence / attention itself (not its projections), all heads."""
    mixer, hidden = config.mixer, config.hidden_size
    heads = mixer.num_heads
    if mixer.type == "transformer":
        return heads * 2 * seq_len * mixer.head_dim
    if mixer.type == "global_linear":
        return heads * 4 * mixer.head_dim**2
    if mixer.type == "gla":
        key_dim, value_dim = hidden * mixer.expand_k / heads, hidden * mixer.expand_v / heads
        return heads * _linear_recurrence(key_dim, value_dim)
    if mixer.type == "mamba2":
        return heads * _linear_recurrence(mixer.state_size, mixer.head_dim)
    value_dim = mixer.head_dim * getattr(mixer, "expand_v", 1.0)
    return heads * _delta_recurrence(mixer.head_dim, value_dim)


def forward_flops_per_token(
    config: ModelConfig, matmul_params: dict[str, int], conv_channels: int, seq_len: int, tokens_per_frame: int = 1,
) -> float:
    """matmul_params: weights of the linear layers by part ('input', 'backbone', 'head'); conv_channels: the
    total short-conv channels over all layers; seq_len in tokens."""
    head = 2 * matmul_params["head"] * tokens_per_frame / seq_len
    dense = 2 * (matmul_params["input"] + matmul_params["backbone"]) + head
    conv = 2 * getattr(config.mixer, "conv_size", 0) * conv_channels
    return dense + conv + config.num_layers * mixer_kernel_flops(config, seq_len)

