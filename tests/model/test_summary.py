"""Parameter counts and FLOPs against counts done by hand from the architecture (seed paper Table 2, eq. 8–10)."""

from __future__ import annotations

import pytest

from megageo.config import CONFIG_DIR, load_config

NCEP_FRAME = (1, 73, 144)
FRAME_SIZE = 73 * 144
MIXERS = ["transformer", "gla", "deltanet", "gated_deltanet", "kda", "mamba2"]


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()


def summary_of(path, t_out: int | None = None, overrides: tuple[str, ...] = ()):
    """The config and the summary of its task's model (`megageo.da` registers the diffusion task)."""
    import megageo.da.commands  # noqa: F401
    from megageo.model.summary import summarize
    from megageo.train.tasks import unsharded_model

    config = load_config(path, [*overrides, *([f"data.t_out={t_out}"] if t_out else [])])
    return config, summarize(unsharded_model(config, NCEP_FRAME), config.model, NCEP_FRAME)


def test_transformer_340m_counts_by_hand() -> None:
    _, summary = summary_of(CONFIG_DIR / "340m" / "transformer.yaml", t_out=4)
    hidden, ffn, layers = 1024, 2816, 24  # fla's SwiGLU width: 8/3 · 1024 rounded up to 256
    per_layer = 4 * hidden * hidden + 3 * hidden * ffn + 2 * hidden  # qkv + out, gate/up/down, two norms
    assert summary.params == {
        "input": FRAME_SIZE * hidden + hidden,
        "backbone": layers * per_layer,
        "head": hidden + hidden * 4 * FRAME_SIZE + 4 * FRAME_SIZE,
    }


@pytest.mark.parametrize("mixer", MIXERS)
def test_table2_configs_are_340m_within_ten_percent(mixer: str) -> None:
    _, summary = summary_of(CONFIG_DIR / "340m" / f"{mixer}.yaml")
    assert 306e6 <= summary.total <= 374e6, f"{mixer}: {summary.total / 1e6:.1f}M"


def test_340m_diffusion_prior_counts_by_hand() -> None:
    """STORM's denoiser at Table 2's size: 24 global-linear blocks (q, k, v and an output gate in one projection,
    the output projection, fla's SwiGLU, two block norms and the per-head output norm, a depthwise 3 × 3 × 3 grid
    convolution), 4 × 4 patches with one position vector per patch of the 19 × 36 grid, the noise-level embedding
    (two hidden × hidden linears with biases), and a head writing 8 features per value that its 3 × 3 convolution
    turns into the patch's 16 values."""
    _, summary = summary_of(CONFIG_DIR / "340m" / "diffusion.yaml")
    hidden, ffn, layers, head_dim, patches, patch_values, features = 1024, 2816, 24, 256, 19 * 36, 16, 8
    per_layer = 5 * hidden * hidden + 3 * hidden * ffn + 2 * hidden + head_dim + 27 * hidden
    assert summary.params == {
        "input": patch_values * hidden + hidden + patches * hidden + 2 * (hidden * hidden + hidden),
        "backbone": layers * per_layer,
        "head": hidden + hidden * patch_values * features + patch_values * features + features * 9 + 1,
    }
    assert 306e6 <= summary.total <= 374e6, f"{summary.total / 1e6:.1f}M"


def test_transformer_flops_per_token_by_hand() -> None:
    config, summary = summary_of(CONFIG_DIR / "tiny" / "transformer.yaml")
    hidden, heads, head_dim, ffn, layers, seq = 256, 4, 64, 768, 2, 8
    t_out = config.data.t_out
    dense = 2 * (FRAME_SIZE * hidden + layers * (4 * hidden * heads * head_dim + 3 * hidden * ffn))
    head = 2 * hidden * t_out * FRAME_SIZE / seq
    attention = layers * heads * 2 * seq * head_dim
    assert summary.flops_per_token(config.model, seq) == pytest.approx(dense + head + attention, rel=1e-12)


def test_token_model_counts_and_flops_per_token_by_hand() -> None:
    """The tiny GLA over 4×4 patches: 19 × 36 = 684 tokens a frame (73 rows padded to 76), a 16-value patch
    embedding with one position vector per patch, the head writing T_out × 16 values per token of the last frame."""
    config, summary = summary_of(CONFIG_DIR / "tiny" / "gla.yaml", overrides=("model.tokens=patch", "model.patch_size=4"))
    hidden, t_out, tokens, layers = 256, config.data.t_out, 684, 2
    assert summary.tokens_per_frame == tokens
    assert summary.params["input"] == 16 * hidden + hidden + tokens * hidden
    assert summary.params["head"] == hidden + hidden * t_out * 16 + t_out * 16
    frames = 8
    backbone = summary.matmul_params["backbone"]
    # 4 heads of K = 256 · 0.5 / 4 = 32 and V = 64, chunk 64 (`megageo.model.flops`)
    recurrence = 4 * (4 * (hidden // 8) * (hidden // 4) + 2 * 64 * (hidden // 8 + hidden // 4))
    expected = 2 * 16 * hidden + 2 * backbone + 2 * hidden * t_out * 16 * tokens / (frames * tokens) + layers * recurrence
    assert summary.flops_per_token(config.model, frames * tokens) == pytest.approx(expected, rel=1e-12)
