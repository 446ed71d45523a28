"""The input projection's product: exactly `F.linear` on fp32 frames, the same product on the bf16-rounded values
for bf16 frames (computed chunk by chunk in fp32), and no gradient for frames that do not ask for one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from megageo.model import frame_projection
from megageo.model.frame_projection import project_frames


def _case():
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(37, 2, 50, generator=generator)
    weight = torch.randn(8, 50, generator=generator, requires_grad=True)
    grad = torch.randn(37, 2, 8, generator=generator)
    return frames, weight, grad


def test_fp32_frames_give_f_linear_and_its_weight_gradient_exactly() -> None:
    frames, weight, grad = _case()
    out = project_frames(frames, weight)
    (expected_weight_grad,) = torch.autograd.grad(F.linear(frames, weight), weight, grad)
    assert torch.equal(out, F.linear(frames, weight))
    out.backward(grad)
    assert torch.allclose(weight.grad, expected_weight_grad, rtol=1e-6, atol=1e-6)


def test_bf16_frames_project_in_fp32_chunk_by_chunk(monkeypatch) -> None:
    monkeypatch.setattr(frame_projection, "FRAMES_PER_CHUNK", 10)  # 37 frames x 2 samples: 8 chunks, the last short
    frames, weight, grad = _case()
    rounded = frames.bfloat16()
    out = project_frames(rounded, weight)
    assert out.dtype == torch.float32
    assert torch.allclose(out, F.linear(rounded.float(), weight), rtol=1e-6, atol=1e-5)
    out.backward(grad)
    (expected,) = torch.autograd.grad(F.linear(rounded.float(), weight), weight, grad)
    assert torch.allclose(weight.grad, expected, rtol=1e-5, atol=1e-5)


def test_input_gradient_only_when_asked() -> None:
    frames, weight, grad = _case()
    project_frames(frames, weight).backward(grad)
    assert frames.grad is None
    frames.requires_grad_()
    project_frames(frames, weight).backward(grad)
    assert torch.allclose(frames.grad, grad @ weight.detach(), rtol=1e-6, atol=1e-6)
