"""Training windows take the symmetries `diffusion.augment` names: each window moved whole (every frame alike, by
the window's own draw), and only while training, so the validation loss still scores the data as stored."""

from __future__ import annotations

import torch

from megageo.da.augment import augment


def _windows() -> torch.Tensor:
    """Two windows [2, 3, 1, 4, 6] whose every value says where it is: 1000·window + 100·frame + 10·row + column."""
    b, t, h, w = torch.meshgrid(torch.arange(2), torch.arange(3), torch.arange(4), torch.arange(6), indexing="ij")
    return (1000 * b + 100 * t + 10 * h + w).unsqueeze(2).float()


def test_a_zonal_shift_rolls_every_frame_of_a_window_by_that_windows_draw() -> None:
    windows = _windows()
    generator = torch.Generator().manual_seed(0)
    moved = augment(windows, ["zonal_shift"], generator)
    shifts = torch.randint(6, (2,), generator=torch.Generator().manual_seed(0))
    assert shifts.tolist() == [2, 3]  # the two windows move differently
    # Column j now holds what stood at column j - shift (mod 6), in every frame and row.
    assert moved[0, :, 0, :, 0].tolist() == [[4, 14, 24, 34], [104, 114, 124, 134], [204, 214, 224, 234]]
    assert moved[1, 2, 0, 3].tolist() == [1233, 1234, 1235, 1230, 1231, 1232]
    assert torch.equal(moved[1], windows[1].roll(3, dims=-1))


def test_a_mirror_swaps_north_and_south_and_both_symmetries_draw_in_order() -> None:
    windows = _windows()
    moved = augment(windows, ["mirror"], torch.Generator().manual_seed(1))
    flips = torch.rand(2, generator=torch.Generator().manual_seed(1)) < 0.5
    assert flips.tolist() == [False, True]  # one window of each kind
    assert torch.equal(moved[0], windows[0])
    assert moved[1, 0, 0, :, 0].tolist() == [1030, 1020, 1010, 1000]  # row 0 now holds what row 3 held
    assert torch.equal(moved[1], windows[1].flip(-2))
    both = augment(windows, ["mirror", "zonal_shift"], torch.Generator().manual_seed(2))
    draws = torch.Generator().manual_seed(2)
    shifts, flips = torch.randint(6, (2,), generator=draws), torch.rand(2, generator=draws) < 0.5
    for index in range(2):
        expected = windows[index].roll(int(shifts[index]), dims=-1)
        assert torch.equal(both[index], expected.flip(-2) if flips[index] else expected)


def test_the_diffusion_loss_augments_in_training_only() -> None:
    from megageo.config import Config, DiffusionConfig
    from megageo.da.task import DiffusionTask
    from megageo.parallel.context import ContextParallel

    class Recorder(torch.nn.Module):
        """A 'denoiser' that remembers the x_t it was given and returns zeros."""

        def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            self.seen = x_t
            return torch.zeros_like(x_t)

    x = _windows() / 1000
    plain = DiffusionTask(Config(task="diffusion"))
    rolled = DiffusionTask(Config(task="diffusion", diffusion=DiffusionConfig(augment=["zonal_shift"])))
    model, cp = Recorder(), ContextParallel()
    seen = {}
    for name, task, training in (("plain", plain, True), ("eval", rolled, False), ("train", rolled, True)):
        model.train(training)
        task.loss(model, x, x[:, :1], cp, None, torch.Generator().manual_seed(5))
        seen[name] = model.seen
    assert torch.equal(seen["eval"], seen["plain"])
    # Same t and noise (drawn first), the clean windows rolled: x_t differs only by μ(t)·(rolled − stored).
    assert not torch.equal(seen["train"], seen["plain"])
    draws = torch.Generator().manual_seed(5)
    t = torch.rand(2, generator=draws, dtype=torch.float64).float()
    torch.randn(x.shape, generator=draws)
    shifts = torch.randint(6, (2,), generator=draws)
    mu = plain.preconditioning.sde.mu(t).reshape(2, 1, 1, 1, 1)
    expected = torch.stack([w.roll(int(s), dims=-1) for w, s in zip(x, shifts)]) - x
    torch.testing.assert_close(seen["train"] - seen["plain"], mu * expected, rtol=0, atol=1e-6)
