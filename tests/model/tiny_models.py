"""Tiny forecaster settings shared by the model tests: every mixer, small enough for 2 CPU ranks."""

from __future__ import annotations

from megageo.config import MixerConfig, ModelConfig

FRAME = (1, 8, 16)
T_IN, T_OUT, BATCH = 8, 2, 2

MIXER_SETTINGS = {
    "transformer": dict(num_heads=4, head_dim=8),
    "gla": dict(num_heads=4, use_short_conv=True),
    "deltanet": dict(num_heads=4, head_dim=8, use_output_gate=True),
    "gated_deltanet": dict(num_heads=4, head_dim=8),
    "kda": dict(num_heads=4, head_dim=8),
    "mamba2": dict(num_heads=4, head_dim=16, state_size=8, n_groups=2),
}
TOKEN_MIXER_SETTINGS = {"global_linear": dict(num_heads=4, head_dim=8)}
"""Mixers that only token models need (the data-assimilation denoiser's non-causal one)."""


def tiny_model_config(mixer: str, **overrides) -> ModelConfig:
    """`overrides`: mixer settings on top of the tiny ones."""
    import megageo.model.mixers  # noqa: F401  (registers the mixers)

    settings = {**MIXER_SETTINGS, **TOKEN_MIXER_SETTINGS}[mixer] | overrides
    return ModelConfig(mixer=MixerConfig.registry[mixer](**settings), num_layers=2, hidden_size=32)
