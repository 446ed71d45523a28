"""The denoiser's tokens: with `model.tubelet_frames` = τ a token holds its patch over τ consecutive frames, so the
mixers see T / τ × P tokens and, before any mixing, a grid point's value reaches exactly its patch in the frames of
its tubelet."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def single_process_group():
    from megageo.parallel import groups

    groups.initialize_single_process()
    yield


def _denoiser(tubelet: int, num_layers: int, head_conv_size: int = 0):
    from megageo.config import ModelConfig
    from megageo.da.denoiser import Denoiser
    from megageo.da.sde import VPSDE, Preconditioning
    from megageo.mixer_configs import GlobalLinearConfig
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext

    config = ModelConfig(mixer=GlobalLinearConfig(num_heads=2, head_dim=4), num_layers=num_layers,
                         hidden_size=8, tokens="patch", patch_size=4, tubelet_frames=tubelet,
                         head_conv_size=head_conv_size)
    ctx = TensorParallelContext.current(False, config.init_std, config.num_layers)
    model = Denoiser(config, (1, 8, 8), ctx, Preconditioning(VPSDE(1e-3)))
    initialize_parameters(model, seed=3, tp=1, rank=0)
    return model.double()


@pytest.mark.parametrize("tubelet, frames_reached", [(1, [0]), (2, [0, 1]), (4, [0, 1, 2, 3])])
def test_a_grid_point_reaches_its_patch_in_its_tubelet_frames_only(tubelet: int, frames_reached: list[int]) -> None:
    """No blocks: the output is the head of the embedding, token by token. Frame 0's point (1, 2) lies in the
    4 × 4 patch of rows 0..3, columns 0..3; its value moves that patch in frames 0..τ-1 and nothing else."""
    model = _denoiser(tubelet, num_layers=0)
    x_t = torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moved = x_t.clone()
    moved[0, 0, 0, 1, 2] += 1.0
    t = torch.tensor(0.5)
    with torch.no_grad():
        change = (model(moved, t) - model(x_t, t)).abs()[0, :, 0]  # [frames, 8, 8]
    reached = torch.zeros_like(change, dtype=torch.bool)
    reached[frames_reached, :4, :4] = True
    assert (change[reached] > 1e-6).all()
    assert torch.equal(change[~reached], torch.zeros_like(change[~reached]))


@pytest.mark.parametrize("tubelet, frames_reached", [(1, [0]), (2, [0, 1])])
def test_the_head_convolution_reaches_one_point_past_the_patch_across_the_date_line_not_the_pole(
        tubelet: int, frames_reached: list[int]) -> None:
    """No blocks, a 3 × 3 head convolution: frame 0's point (1, 2) moves its patch (rows 0..3, columns 0..3) and
    the ring of one point around it: row 4, column 4 and, across the date line, column 7; nothing north of the
    pole row 0, and nothing outside its tubelet's frames."""
    model = _denoiser(tubelet, num_layers=0, head_conv_size=3)
    x_t = torch.randn(1, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moved = x_t.clone()
    moved[0, 0, 0, 1, 2] += 1.0
    t = torch.tensor(0.5)
    with torch.no_grad():
        change = (model(moved, t) - model(x_t, t)).abs()[0, :, 0]
    reached = torch.zeros_like(change, dtype=torch.bool)
    reached[frames_reached, :5, :5] = True
    reached[frames_reached, :5, 7] = True
    assert (change[reached] > 1e-6).all()
    assert torch.equal(change[~reached], torch.zeros_like(change[~reached]))


@pytest.mark.parametrize("tubelet, tokens", [(1, 16), (2, 8), (4, 4)])
def test_the_mixers_see_a_token_per_patch_and_tubelet(tubelet: int, tokens: int) -> None:
    """4 frames of an 8 × 8 grid in 4 × 4 patches: 4 patches a frame, 16 / τ tokens a window."""
    model = _denoiser(tubelet, num_layers=1)
    seen = []
    model.blocks[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    out = model(torch.zeros(3, 4, 1, 8, 8, dtype=torch.float64), torch.tensor(0.5))
    assert seen == [torch.Size([tokens, 3, 8])] and out.shape == (3, 4, 1, 8, 8)
