"""Configs: YAML with a base file, `key=value` overrides, and one-line errors that name the key."""

from __future__ import annotations

import pytest

from megageo.config import CONFIG_DIR, DEFAULT_CONFIG, load_config
from megageo.errors import MegageoError

TINY_GLA = CONFIG_DIR / "tiny" / "gla.yaml"


def test_default_is_the_tiny_gla_and_inherits_its_base() -> None:
    config = load_config()
    assert DEFAULT_CONFIG == TINY_GLA
    assert config.model.mixer.type == "gla"
    assert (config.model.num_layers, config.model.hidden_size, config.data.t_in, config.data.t_out) == (2, 256, 8, 4)
    assert config.train.precision == "fp32"


def test_overrides_are_parsed_as_yaml_values() -> None:
    config = load_config(TINY_GLA, ["train.lr=3e-4", "train.steps=7", "model.mixer.num_heads=8",
                                    "parallel.sequence_parallel=true", "parallel.tensor_parallel=2"])
    assert config.train.lr == 3e-4 and isinstance(config.train.lr, float)
    assert config.train.steps == 7
    assert config.model.mixer.num_heads == 8
    assert config.parallel.sequence_parallel is True


def test_to_dict_round_trips_through_yaml(tmp_path) -> None:
    from megageo.config import dump_config

    config = load_config(CONFIG_DIR / "340m" / "mamba2.yaml", ["train.steps=3"])
    dump_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.stepz=5"], "unknown config key train.stepz"),
        (["train.steps=many"], "config key train.steps must be int, got 'many'"),
        (["train.steps=true"], "config key train.steps must be int, got True"),
        (["model.mixer.type=lstm"], "config key model.mixer.type must name a mixer"),
        (["model.mixer.num_heads=3", "parallel.tensor_parallel=2"],
         "model.mixer.num_heads=3 is not divisible by parallel.tensor_parallel=2"),
        (["parallel.pipeline_parallel=4"], "model.num_layers=2 is fewer than parallel.pipeline_parallel=4"),
        (["parallel.pipeline_parallel=2", "parallel.zero_stage=2"],
         "parallel.zero_stage=2 cannot be combined with pipeline_parallel=2"),
        (["train.global_batch_size=10", "train.micro_batch_size=4"],
         "train.global_batch_size=10 is not a multiple of train.micro_batch_size=4"),
        (["parallel.sequence_parallel=true"], "parallel.sequence_parallel needs parallel.tensor_parallel > 1"),
        (["train.precision=fp8"], "train.precision must be auto, fp32 or bf16"),
        (["data.variables=[hgt, rhum]"], "config key data.variables names 'rhum', not one of hgt, uwnd, vwnd, air"),
        (["data.levels=500"], "config key data.levels must be a list, got 500"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.sigma_data=0"], "diffusion.sigma_data must be positive, got 0"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.augment=[zonal_shift, rotate]"], "diffusion.augment takes zonal_shift and mirror, got rotate"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.augment=[mirror]", "data.variables=[hgt, vwnd]"],
         "diffusion.augment: mirror would flip v-wind's sign"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.random_shift=true", "diffusion.augment=[mirror]"],
         "diffusion.random_shift needs a prior trained with diffusion.augment: [zonal_shift]"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.spectral_truncation=-1"], "diffusion.spectral_truncation must be 0 (none) or a degree, got -1"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.start_time=1.5"], "diffusion.start_time must be in (0, 1] (1: from pure noise), got 1.5"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.gaussian_taper_km=-1"], "diffusion.gaussian_taper_km must be 0 (untapered) or a half-width, got -1"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.gaussian_base=true", "data.variables=[hgt, vwnd]"],
         "diffusion.gaussian_base averages over the north-south mirror"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.guidance_jacobian=gaussian_base"],
         "diffusion.guidance_jacobian: gaussian_base needs a prior trained with diffusion.gaussian_base: true"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.guidance_jacobian=base"], "diffusion.guidance_jacobian must be network or gaussian_base, got 'base'"),
        (["data.normalisation=daily"], "config key data.normalisation must be channel or grid_point, got 'daily'"),
        (["model.mixer.expand_k=0.3"], "model.mixer.expand_k=0.3 gives width 76.8"),
        (["train.steps=0"], "train.steps must be at least 1, got 0"),
        (["trainsteps"], "must look like section.key=value"),
        (["parallel.context_parallel=0"], "parallel.context_parallel must be at least 1, got 0"),
        (["parallel.context_parallel=3"], "data.t_in=8 frames cannot be split into parallel.context_parallel=3"),
        (["parallel.context_parallel=4", "model.mixer.use_short_conv=true"],
         "context-parallel blocks of 2 frames (data.t_in=8 / parallel.context_parallel=4) are shorter than the "
         "short convolution's halo of 3 frames"),
        (["parallel.context_parallel=2", "parallel.tensor_parallel=4", "model.mixer.num_heads=4",
          "parallel.sequence_parallel=true", "data.t_in=12"],
         "parallel.sequence_parallel splits each block of 6 frames"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "diffusion.prediction=v"],
         "diffusion.prediction must be edm or epsilon or x0, got 'v'"),
        (["model.tubelet_frames=2"],
         "config key model.tubelet_frames must be at least 1, and above 1 only with model.tokens=patch; got 2"),
        (["model.tokens=patch", "model.tubelet_frames=2"], "model.tubelet_frames > 1 is for task: diffusion"),
        (["model.mixer={type: global_linear, grid_conv_size: 3}"],
         "model.mixer.grid_conv_size convolves each frame's patch grid: it needs model.tokens=patch"),
        (["model.tokens=patch", "model.pole_padding=north"],
         "config key model.pole_padding must be split or south, got 'north'"),
        (["model.tokens=patch", "model.head_conv_size=4"],
         "config key model.head_conv_size must be 0 or odd (a centred kernel), got 4"),
        (["model.tokens=patch", "model.head_conv_size=3"],
         "model.head_conv_size is for task: diffusion (a denoiser's head writes every frame)"),
        (["model.tokens=patch", "model.mixer={type: global_linear, grid_conv_size: 4}"],
         "model.mixer.grid_conv_size must be 0 or odd (a centred kernel), got 4"),
        (["task=diffusion", "model.tokens=patch", "model.frame_causal=false", "model.head=absolute",
          "model.tubelet_frames=2", "parallel.context_parallel=8"],
         "blocks of 1 frames (data.t_in=8 / parallel.context_parallel=8) cannot be cut into tubelets of "
         "model.tubelet_frames=2"),
        (["model.tokens=patch", "model.mixer={type: global_linear, grid_conv_size: 3, grid_conv_frames: 2}"],
         "model.mixer.grid_conv_frames must be odd (a centred kernel) and above 1 only with a grid_conv_size; got 2"),
        (["model.tokens=patch", "model.mixer={type: global_linear, grid_conv_frames: 3}"],
         "model.mixer.grid_conv_frames must be odd (a centred kernel) and above 1 only with a grid_conv_size; got 3"),
        (["model.tokens=patch", "model.mixer={type: global_linear, grid_conv_size: 3, grid_conv_frames: 5}",
          "parallel.context_parallel=8"],
         "context-parallel blocks of 1 token frames are shorter than the grid convolution's halo of 2 "
         "(model.mixer.grid_conv_frames // 2)"),
    ],
)
def test_bad_values_fail_up_front_naming_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(MegageoError, match=None) as error:
        load_config(TINY_GLA, overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_mamba2_groups_must_split_across_tp() -> None:
    with pytest.raises(MegageoError, match="n_groups=1 must divide num_heads=32 and be divisible by parallel.tensor_parallel=2"):
        load_config(CONFIG_DIR / "340m" / "mamba2.yaml", ["parallel.tensor_parallel=2"])


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(MegageoError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(MegageoError, match="is not valid YAML"):
        load_config(bad)


CONFIG_ONLY = """
import sys
from megageo.config import CONFIG_DIR, load_config
mixers = [load_config(path).model.mixer.type for path in sorted(CONFIG_DIR.glob("*/*.yaml")) if path.stem != "base"]
print(" ".join(mixers))
print(" ".join(sorted(name for name in sys.modules if name.startswith(("megageo.model", "torch", "megatron")))))
"""


def test_configs_load_without_importing_the_model() -> None:
    """Registration flows one way: config never imports the mixers, yet every shipped config loads in a fresh
    interpreter that has imported nothing but `megageo.config` (no torch, no Megatron, no mixer module)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run([sys.executable, "-c", CONFIG_ONLY], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    mixers, imported = result.stdout.split("\n")[:2]
    six = ["deltanet", "gated_deltanet", "gla", "kda", "mamba2", "transformer"]
    with_tokens = ["deltanet", "global_linear", "gated_deltanet", "gla", "gla", "kda", "mamba2",
                   "transformer"]  # + diffusion.yaml and gla_tokens.yaml
    tiny = ["deltanet", "global_linear", "gated_deltanet", "gla", "gla", "gla", "kda", "mamba2", "mamba2",
            "transformer", "transformer"]  # + diffusion.yaml, gla_winds.yaml and the token configs
    assert mixers.split() == with_tokens + six + tiny, result.stderr  # 340m/, paper/, tiny/
    assert imported == ""


def test_every_registered_mixer_config_has_its_layer() -> None:
    from megageo.mixer_configs import MixerConfig
    from megageo.model.block import Block  # noqa: F401  (building blocks is what needs the layers)
    from megageo.model.registry import MIXERS, register_mixer

    assert {config.type: layer.__name__ for config, layer in MIXERS.items()} == {
        "transformer": "Attention", "gla": "GatedLinearAttention", "deltanet": "DeltaNet",
        "gated_deltanet": "GatedDeltaNet", "kda": "KimiDeltaAttention", "mamba2": "Mamba2",
        "global_linear": "GlobalLinearAttention",
    }
    assert set(MIXERS) == set(MixerConfig.registry.values())
    with pytest.raises(TypeError, match="KDAConfig is not the config registered for mixer 'gla'"):
        register_mixer("gla", MixerConfig.registry["kda"])


def test_context_parallel_layout_must_fit_the_world() -> None:
    from megageo.train.engine import Layout

    parallel = load_config(TINY_GLA, ["parallel.context_parallel=2", "parallel.tensor_parallel=2"]).parallel
    assert Layout.of(parallel, 8).as_dict() == {"tp": 2, "cp": 2, "pp": 1, "dp": 2, "zero_stage": 0}
    with pytest.raises(MegageoError, match="6 ranks cannot be split into tensor_parallel=2 x context_parallel=2"):
        Layout.of(parallel, 6)


def test_mamba2_needs_no_head_split_for_context_parallelism() -> None:
    """Megatron's Mamba CP splits heads across CP ranks (nheads % (tp·cp) == 0); megageo passes states instead,
    so one head and one group (which Megatron's rule would refuse at CP=2) are valid."""
    overrides = ["parallel.context_parallel=2", "model.mixer.num_heads=1", "model.mixer.head_dim=512",
                 "model.mixer.n_groups=1"]
    config = load_config(CONFIG_DIR / "tiny" / "mamba2.yaml", overrides)
    assert (config.model.mixer.num_heads, config.parallel.context_parallel) == (1, 2)


def test_a_checkpoints_sampler_can_be_overridden_but_not_what_its_weights_were_trained_with() -> None:
    from megageo.config import with_sampler_overrides

    trained = load_config(CONFIG_DIR / "tiny" / "diffusion.yaml")
    sampler = with_sampler_overrides(trained, ["diffusion.tau=0.1", "diffusion.steps=64"]).diffusion
    assert (sampler.tau, sampler.steps, sampler.corrections) == (0.1, 64, trained.diffusion.corrections)
    for override in ("diffusion.eta=0.01", "diffusion.prediction=epsilon", "train.steps=3"):
        with pytest.raises(MegageoError, match=f"--set '{override}': only the sampler's keys can be set here"):
            with_sampler_overrides(trained, [override])
    with pytest.raises(MegageoError, match="tau > 0"):
        with_sampler_overrides(trained, ["diffusion.tau=0"])


def test_a_token_checkpoint_recorded_before_pole_padding_existed_keeps_its_south_layout() -> None:
    """Checkpoints record the whole config; one without `model.pole_padding` was padded at the south, and reading
    it with today's default (split) would shift every patch by three rows under the weights it learned."""
    from megageo.config import config_from_dict

    recorded = load_config(CONFIG_DIR / "tiny" / "diffusion.yaml").to_dict()
    assert recorded["model"]["pole_padding"] == "split"
    del recorded["model"]["pole_padding"]
    assert config_from_dict(recorded).model.pole_padding == "south"
    frame_model = load_config(TINY_GLA).to_dict()  # no patches, nothing to pad: the default stands
    del frame_model["model"]["pole_padding"]
    assert config_from_dict(frame_model).model.pole_padding == "split"
