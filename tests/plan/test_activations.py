"""Each mixer's list of kept tensors (`megageo.plan.activations`) against what autograd really saves in one block:
every tensor a pack hook sees during the block's forward, counted once per storage, weights excluded."""

from __future__ import annotations

import pytest

from model.tiny_models import MIXER_SETTINGS, TOKEN_MIXER_SETTINGS

VARIANTS = {name: {} for name in MIXER_SETTINGS}
VARIANTS["gla+conv"] = {"use_short_conv": True}
VARIANTS["deltanet-gate"] = {"use_output_gate": False}
TOKEN_VARIANTS = {"gla+frame": True, "mamba2+frame": True, "transformer+frame": True, "global_linear": False}
"""Token models over frames of `TOKENS_PER_FRAME` tokens: frame-causal (True) or not."""
TOKENS_PER_FRAME = 8
VARIANTS |= dict.fromkeys(TOKEN_VARIANTS, {})


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()


def saved_bytes(config, frames: int, batch: int) -> int:
    import torch

    from megageo.model.block import Block
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext

    from megageo.model.sequence import SequenceLayout

    sequence = SequenceLayout(1, TOKENS_PER_FRAME, config.frame_causal) if config.tokens == "patch" else SequenceLayout()
    block = Block(config, TensorParallelContext(1, 0, False, config.init_std, config.num_layers, sequence=sequence))
    initialize_parameters(block, seed=0, tp=1, rank=0)
    weights = {param.untyped_storage().data_ptr() for param in block.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in weights:
            storages[pointer] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        block(torch.randn(frames, batch, config.hidden_size, requires_grad=True))
    return sum(storages.values())


def model_config(variant: str, hidden: int):
    import megageo.model.mixers  # noqa: F401  (registers the mixers)
    from megageo.config import MixerConfig, ModelConfig

    mixer = variant.split("+")[0].split("-")[0]
    settings = {**MIXER_SETTINGS, **TOKEN_MIXER_SETTINGS}[mixer] | VARIANTS[variant]
    if hidden != 32:  # the tiny configs' own mixer settings at hidden 256
        settings = {"num_heads": 4, **{k: v for k, v in VARIANTS[variant].items()}}
        settings |= {"head_dim": 64} if mixer in ("transformer", "deltanet", "gated_deltanet", "kda") else {}
        settings |= {"num_heads": 8, "head_dim": 64, "state_size": 16, "n_groups": 2} if mixer == "mamba2" else {}
        settings |= {"head_dim": 64} if mixer == "global_linear" else {}
    tokens = {"tokens": "patch", "frame_causal": TOKEN_VARIANTS[variant]} if variant in TOKEN_VARIANTS else {}
    return ModelConfig(mixer=MixerConfig.registry[mixer](**settings), num_layers=2, hidden_size=hidden, **tokens)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("hidden, frames, batch", [(32, 256, 1), (32, 200, 2), (256, 128, 1)])
def test_kept_tensors_match_autograd(variant: str, hidden: int, frames: int, batch: int) -> None:
    from megageo.plan.activations import layer_terms, total_bytes

    config = model_config(variant, hidden)
    measured = saved_bytes(config, frames, batch)
    predicted = total_bytes(layer_terms(config, "cpu", frames, tokens_per_frame=TOKENS_PER_FRAME), frames, batch, 1,
                            False, 4)
    assert predicted == pytest.approx(measured, rel=0.01), (variant, predicted, measured)
