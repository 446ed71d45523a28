"""configs/paper/: every file loads, validates and holds the seed paper's numbers, typed in here from its text
(Table 2's models, Table 3's recipe, T_out = 4 for the 24 h comparison, a 90/10 split of Z500)."""

from __future__ import annotations

import pytest

from megageo.config import CONFIG_DIR, load_config

# Table 2: layers, hidden, heads, head dim (Mamba2's heads are "–" in the paper).
TABLE_2 = {
    "transformer": (24, 1024, 16, 64),
    "gla": (24, 1024, 4, 256),
    "gated_deltanet": (21, 1024, 6, 256),
    "deltanet": (24, 1024, 8, 128),
    "mamba2": (48, 1024, None, 64),
    "kda": (21, 1024, 6, 256),
}


def test_there_is_one_paper_config_per_table_2_model():
    assert sorted(path.stem for path in (CONFIG_DIR / "paper").glob("*.yaml")) == sorted(TABLE_2)


@pytest.mark.parametrize("mixer", sorted(TABLE_2))
def test_paper_config_is_table_2_model_with_table_3_recipe(mixer):
    config = load_config(CONFIG_DIR / "paper" / f"{mixer}.yaml")
    model, data, train = config.model, config.data, config.train
    layers, hidden, heads, head_dim = TABLE_2[mixer]
    assert (config.model.mixer.type, model.num_layers, model.hidden_size) == (mixer, layers, hidden)
    if heads is not None:
        assert model.mixer.num_heads == heads
    value_head_dim = (hidden * model.mixer.expand_v // model.mixer.num_heads if mixer == "gla"
                      else model.mixer.head_dim * getattr(model.mixer, "expand_v", 1))
    assert value_head_dim == head_dim
    # Table 3, and §4.2: T_out = 4 for the comparison with persistence and climatology at 6-24 h.
    assert (data.t_in, data.t_out) == (8, 4)
    assert train.global_batch_size == 256
    assert (train.beta1, train.beta2, train.eps) == (0.9, 0.999, 1e-15)
    assert (train.lr, train.warmup_steps, train.steps, train.grad_clip) == (3e-4, 1024, 5000, 1.0)
    assert train.precision == "auto"  # bfloat16 mixed precision on the GPU (engine.use_bf16); fp32 without one
    # §5.1: validation every 20 steps on a consistent batch of 256 samples.
    assert (train.eval_every, train.eval_samples) == (20, 256)
    # Eq. 10's head and eq. 11's plain MSE, one-step training: none of the tiny configs' objective options.
    assert (model.head, train.latitude_weighted_loss, train.lead_weights, train.rollout_steps) == (
        "absolute", False, [], 1)
    assert train.out_dir == f"runs/paper/{mixer}"


def test_the_documented_store_is_z500_with_a_90_10_split():
    from megageo.cli import build_parser

    args = build_parser().parse_args(["data", "build", "--src", "ncep", "--out", "data/ncep_z500.h5"])
    assert (args.vars, args.levels, args.train_fraction) == (["hgt"], ["500"], 0.9)
    assert load_config(CONFIG_DIR / "paper" / "gla.yaml").data.store == args.out
