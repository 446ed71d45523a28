"""Inputs in fla's conventions and the oracle comparison shared by the kernel tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Kernel = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]

TOLERANCE = 1e-4
"""Largest relative error `||a - b|| / ||b||` allowed against an oracle in float32."""


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


def random_inputs(
    op: str,
    batch: int,
    length: int,
    heads: int,
    dim: int,
    initial_state: bool,
    strong_decay: bool = False,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Inputs as fla's layers produce them: log-sigmoid gates, sigmoid betas, l2-normalised keys for the delta rules.

    `op` is one of "gla", "delta_rule", "gated_delta_rule", "kda"; the tensors are float32 `[B, T, H, ...]`.
    `strong_decay` maps the gates to `4 g - 1`, about -4 per step and -270 over a chunk, where `exp(-cumsum(g))`
    would overflow float32: the kernels must never exponentiate such sums.
    """
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    inputs = {name: randn(batch, length, heads, dim) for name in ("q", "k", "v")}
    if op != "gla":
        inputs["k"] = F.normalize(inputs["k"], dim=-1)
        inputs["beta"] = randn(batch, length, heads).sigmoid()
    if op in ("gla", "kda"):
        inputs["g"] = F.logsigmoid(randn(batch, length, heads, dim))
    if op == "gated_delta_rule":
        inputs["g"] = F.logsigmoid(randn(batch, length, heads))
    if strong_decay:
        inputs["g"] = 4 * inputs["g"] - 1
    if initial_state:
        inputs["initial_state"] = randn(batch, heads, dim, dim)
    return inputs


def assert_matches_oracle(kernel: Kernel, oracle: Kernel, inputs: dict[str, torch.Tensor]) -> None:
    errors = compare_with_oracle(kernel, oracle, inputs)
    assert max(errors.values()) <= TOLERANCE, errors


def compare_with_oracle(
    kernel: Kernel, oracle: Kernel, inputs: dict[str, torch.Tensor], seed: int = 1
) -> dict[str, float]:
    """Relative errors of the kernel's output, final state and input gradients against the oracle's.

    Both are called with `inputs` as keyword arguments and must return `(o, final_state)`; the gradients are those
    of `<o, do> + <final_state, dS>` for random cotangents, so every output path is exercised.
    """
    kernel_inputs = {name: x.clone().requires_grad_() for name, x in inputs.items()}
    oracle_inputs = {name: x.clone().requires_grad_() for name, x in inputs.items()}
    o, state = kernel(**kernel_inputs)
    o_expected, state_expected = oracle(**oracle_inputs)

    generator = torch.Generator().manual_seed(seed)
    do = torch.randn(o_expected.shape, generator=generator)
    dstate = torch.randn(state_expected.shape, generator=generator)
    grads = torch.autograd.grad((o * do).sum() + (state * dstate).sum(), list(kernel_inputs.values()))
    grads_expected = torch.autograd.grad(
        (o_expected * do).sum() + (state_expected * dstate).sum(), list(oracle_inputs.values())
    )

    errors = {"o": relative_error(o, o_expected), "final_state": relative_error(state, state_expected)}
    for name, grad, grad_expected in zip(inputs, grads, grads_expected):
        errors[f"d{name}"] = relative_error(grad, grad_expected)
    return errors
