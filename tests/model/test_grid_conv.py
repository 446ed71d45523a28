"""The grid convolution of a token mixer: each frame's patch grid is convolved, periodic across the date line and
zero past the poles, and over `frames` frames centred on its own, zero past the window's ends; hand-computed on a
3 × 4 grid."""

from __future__ import annotations

import torch


def _convolution(rows: int, cols: int, frames: int = 1):
    from megageo.model.grid_conv import PatchGridConvolution
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.model.sequence import SequenceLayout

    ctx = TensorParallelContext(tp=1, rank=0, sequence_parallel=False, init_std=0.02, num_layers=1,
                                sequence=SequenceLayout(rows, cols))
    conv = PatchGridConvolution(1, 3, ctx, frames)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(1.0, 9.0 * frames + 1).view(1, frames, 3, 3))  # w[f, a, b] = 9f + 3a + b + 1
    return conv


def test_a_token_at_the_north_pole_and_the_date_line_reaches_its_neighbours_across_the_date_line_only() -> None:
    """One-hot at (row 0, col 0): out[r, c] = w[1 - r, 1 + (0 - c wrapped to -1..1)], the rows above the pole are
    zero. Frame 1 holds nothing and stays zero: frames never mix."""
    conv = _convolution(3, 4)
    x = torch.zeros(1, 2 * 12, 1)
    x[0, 0, 0] = 1.0
    out = conv(x)[0, :, 0].view(2, 3, 4)
    expected = torch.tensor([[5.0, 4.0, 0.0, 6.0],   # row 0: w[1, 1], w[1, 0] east of it, w[1, 2] across the date line
                             [2.0, 1.0, 0.0, 3.0],   # row 1: w[0, ·]
                             [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(out[0], expected)
    assert torch.equal(out[1], torch.zeros(3, 4))


def test_a_constant_field_is_scaled_by_the_kernel_sum_except_at_the_poles() -> None:
    """Interior rows see all nine taps (45); the first row loses w[0, ·] (6), the last w[2, ·] (24)."""
    out = _convolution(3, 4)(torch.ones(2, 12, 1))
    assert torch.equal(out[0, :, 0].view(3, 4), torch.tensor([[39.0] * 4, [45.0] * 4, [21.0] * 4]))


def test_a_token_reaches_the_frame_before_and_after_it_and_nothing_past_the_window() -> None:
    """frames = 3, one-hot at (frame 0, row 1, col 1) of 3 frames: output frame f reads input frame f - 1 + j with
    weight w[j], so frame 0 sees it through w[1], frame 1 through w[0], frame 2 not at all; the centre tap of
    w[j] is 9j + 5."""
    conv = _convolution(3, 4, frames=3)
    x = torch.zeros(1, 3 * 12, 1)
    x[0, 5, 0] = 1.0
    out = conv(x)[0, :, 0].view(3, 3, 4)
    assert (out[0, 1, 1], out[1, 1, 1]) == (14.0, 5.0)
    assert torch.equal(out[0], torch.tensor([[18.0, 17.0, 16.0, 0.0], [15.0, 14.0, 13.0, 0.0],
                                             [12.0, 11.0, 10.0, 0.0]]))
    assert torch.equal(out[2], torch.zeros(3, 4))
