"""Spatiotemporal tokens: patches round-trip, each token holds its own patch, the token model reduces to the frame
model with one patch per frame, and every mixer is causal (or frame-causal) over tokens as it claims."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tiny_models import MIXER_SETTINGS, tiny_model_config


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()
    yield


def test_patching_then_unpatching_is_the_identity_on_the_ncep_grid() -> None:
    from megageo.model.tokens import PatchGrid, patchify, unpatchify

    grid = PatchGrid.of((3, 73, 144), 4)
    assert (grid.rows, grid.cols, grid.tokens_per_frame, grid.token_values) == (19, 36, 684, 48)
    frames = torch.randn(2, 5, 3, 73, 144, generator=torch.Generator().manual_seed(0))
    tokens = patchify(frames, grid)
    assert tokens.shape == (2, 5 * 684, 48)
    assert torch.equal(unpatchify(tokens, grid), frames)


def test_each_token_holds_its_patch_and_the_padding_repeats_each_pole() -> None:
    from megageo.model.tokens import PatchGrid, patchify

    grid = PatchGrid.of((2, 73, 144), 4)
    assert (grid.north_padding, grid.south_padding) == (1, 2)
    frames = torch.randn(1, 2, 2, 73, 144, generator=torch.Generator().manual_seed(1))
    tokens = patchify(frames, grid)
    t, row, col = 1, 7, 30  # frame 1, patch row 7 (padded rows 28..31: latitudes 27..30), column 30 (longitudes 120..123)
    token = tokens[0, t * 684 + row * 36 + col].view(2, 4, 4)
    assert torch.equal(token, frames[0, t, :, 27:31, 120:124])
    first_row = tokens[0, 5].view(2, 4, 4)  # a copy of the north pole, then rows 0..2
    assert torch.equal(first_row[:, :1], frames[0, 0, :, :1, 20:24])
    assert torch.equal(first_row[:, 1:], frames[0, 0, :, 0:3, 20:24])
    last_row = tokens[0, 18 * 36 + 5].view(2, 4, 4)  # rows 71 and 72 (the south pole), then two copies of it
    assert torch.equal(last_row[:, :2], frames[0, 0, :, 71:73, 20:24])
    assert torch.equal(last_row[:, 2:], frames[0, 0, :, 72:73, 20:24].expand(2, 2, 4))


def test_the_south_layout_of_older_checkpoints_repeats_the_south_pole_only() -> None:
    from megageo.model.tokens import PatchGrid, patchify, unpatchify

    grid = PatchGrid.of((2, 73, 144), 4, "south")
    assert (grid.north_padding, grid.south_padding) == (0, 3)
    frames = torch.randn(1, 2, 2, 73, 144, generator=torch.Generator().manual_seed(1))
    tokens = patchify(frames, grid)
    assert torch.equal(tokens[0, 5].view(2, 4, 4), frames[0, 0, :, 0:4, 20:24])
    last_row = tokens[0, 18 * 36 + 5].view(2, 4, 4)  # rows 72..75: the south pole, then three copies of it
    assert torch.equal(last_row, frames[0, 0, :, 72:73, 20:24].expand(2, 4, 4))
    assert torch.equal(unpatchify(tokens, grid), frames)


def test_no_token_row_of_the_tiny_prior_is_mostly_padding() -> None:
    """8 × 8 patches of the 73 latitudes: 7 padded rows, split 3 north and 4 south, so each edge token row holds
    at least half a patch of the grid (the south pole alone, at 0.4 % of a mean row's weight, learned little)."""
    from megageo.model.tokens import PatchGrid

    grid = PatchGrid.of((1, 73, 144), 8)
    assert (grid.rows, grid.north_padding, grid.south_padding) == (10, 3, 4)


def test_a_patch_size_that_does_not_divide_the_longitudes_is_one_line() -> None:
    from megageo.errors import MegageoError
    from megageo.model.tokens import PatchGrid

    with pytest.raises(MegageoError, match=r"^model.patch_size=5 must divide the grid's 144 longitudes$"):
        PatchGrid.of((1, 73, 144), 5)


def _model(config, frame_shape, t_out=2):
    from megageo.model.forecaster import Forecaster
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext

    model = Forecaster(config, frame_shape, t_out, TensorParallelContext.current(False, config.init_std, config.num_layers))
    initialize_parameters(model, seed=5, tp=1, rank=0)
    return model.double()


@pytest.mark.parametrize("mixer", list(MIXER_SETTINGS))
def test_one_patch_per_frame_is_the_frame_model_with_a_time_sinusoid(mixer: str) -> None:
    """With p = H = W the frame is one patch: the patch embedding is the frame model's input projection (its
    weight laid out alike, C·H·W in (c, i, j) order), whose bias is the embedding's bias plus the one position
    vector, and the model adds the sinusoid of the frame index; the patch head is the frame head. Copying the
    weights across, the forecasts are equal."""
    from megageo.model.tokens import time_encoding

    frame_shape, steps = (2, 8, 8), 6
    frame_config = tiny_model_config(mixer)
    token_model = _model(dataclasses.replace(frame_config, tokens="patch", patch_size=8), frame_shape)
    frame_model = _model(frame_config, frame_shape)
    frame_model.load_state_dict({
        **{name: value for name, value in token_model.state_dict().items() if not name.startswith("input.")},
        "input.proj.weight": token_model.input.proj.weight,
        "input.bias": token_model.input.proj.bias + token_model.input.position[0],
    })
    frames = torch.randn(3, steps, *frame_shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        x = frame_model.input(frames) + time_encoding(torch.arange(steps), frame_config.hidden_size, torch.float64)[:, None]
        for block in frame_model.blocks:
            x = block(x)
        expected = frame_model.head(x)
        actual = token_model(frames)
    assert actual.shape == (3, 2, *frame_shape)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def _backbone_outputs(model, frames: torch.Tensor) -> torch.Tensor:
    x = model.input(frames)
    for block in model.blocks:
        x = block(x)
    return x.squeeze(1)


CAUSAL_CASES = [*((mixer, False) for mixer in MIXER_SETTINGS), ("gla", True), ("mamba2", True), ("transformer", True)]


@pytest.mark.parametrize("mixer,frame_causal", CAUSAL_CASES, ids=[f"{m}-{'frame' if f else 'token'}" for m, f in CAUSAL_CASES])
def test_tokens_see_the_past_and_frame_causal_tokens_their_whole_frame(mixer: str, frame_causal: bool) -> None:
    """Perturbing one token (frame 1, the second of its 6 patches) changes exactly the outputs it may reach: every
    later token, and with frame causality the earlier tokens of its own frame too; never an earlier frame."""
    frame_shape, tokens_per_frame = (1, 4, 6), 6  # patch 2: 2 rows × 3 columns
    config = dataclasses.replace(tiny_model_config(mixer), tokens="patch", patch_size=2, frame_causal=frame_causal)
    model = _model(config, frame_shape)
    frames = torch.randn(1, 3, *frame_shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    perturbed = frames.clone()
    perturbed[0, 1, 0, 0:2, 2:4] += 1.0  # patch row 0, column 1 of frame 1: token 6 + 1
    with torch.no_grad():
        changed = (_backbone_outputs(model, frames) - _backbone_outputs(model, perturbed)).abs().amax(-1) > 1e-12
    first_reached = tokens_per_frame if frame_causal else tokens_per_frame + 1
    assert changed.tolist() == [index >= first_reached for index in range(3 * tokens_per_frame)]


def test_global_linear_mixer_sees_the_whole_sequence() -> None:
    from megageo.mixer_configs import GlobalLinearConfig

    config = dataclasses.replace(tiny_model_config("gla"), mixer=GlobalLinearConfig(num_heads=4, head_dim=8),
                                 tokens="patch", patch_size=2)
    model = _model(config, (1, 4, 6))
    frames = torch.randn(1, 3, 1, 4, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    perturbed = frames.clone()
    perturbed[0, 2, 0, 2:4, 4:6] += 1.0  # the very last token
    with torch.no_grad():
        changed = (_backbone_outputs(model, frames) - _backbone_outputs(model, perturbed)).abs().amax(-1) > 1e-12
    assert bool(changed.all())


def test_the_delta_rule_family_refuses_frame_causality_in_one_line() -> None:
    from megageo.config import CONFIG_DIR, load_config
    from megageo.errors import MegageoError

    for mixer in ("deltanet", "gated_deltanet", "kda"):
        with pytest.raises(MegageoError, match=rf"^model.frame_causal is not available for mixer {mixer}: a delta rule"):
            load_config(CONFIG_DIR / "tiny" / f"{mixer}.yaml", ["model.tokens=patch", "model.frame_causal=true"])
