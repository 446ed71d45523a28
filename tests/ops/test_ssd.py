"""mamba_chunk_scan_combined against transformers' pure-PyTorch `mamba2_chunk_scan` (mamba-ssm's arguments) and
against the selective-state-space recurrence written out step by step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ops_testing import TOLERANCE, assert_matches_oracle, relative_error
from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

from megageo.ops import mamba_chunk_scan_combined

BATCH, HEADS, GROUPS, HEAD_DIM, STATE_DIM = 2, 4, 2, 16, 32


def ssd_inputs(length: int, initial_states: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs as Mamba2's layer produces them: raw dt with a bias (softplus in the kernel), A = -exp(A_log)."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    inputs = {
        "x": randn(BATCH, length, HEADS, HEAD_DIM),
        "dt": randn(BATCH, length, HEADS),
        "A": -randn(HEADS).exp(),
        "B": randn(BATCH, length, GROUPS, STATE_DIM),
        "C": randn(BATCH, length, GROUPS, STATE_DIM),
        "D": randn(HEADS),
        "dt_bias": randn(HEADS) - 2,
    }
    if initial_states:
        inputs["initial_states"] = randn(BATCH, HEADS, HEAD_DIM, STATE_DIM)
    return inputs


def stepwise_ssd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    initial_states: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T`, `y_t = (h_t C_t + D x_t) silu(z_t)`, one step at a time."""
    dt = F.softplus(dt + dt_bias)
    heads_per_group = x.shape[2] // B.shape[2]
    B, C = (m.repeat_interleave(heads_per_group, dim=2) for m in (B, C))
    state = x.new_zeros(x.shape[0], x.shape[2], x.shape[3], B.shape[3]) if initial_states is None else initial_states
    outputs = []
    for t in range(x.shape[1]):
        decay = (dt[:, t] * A).exp()[..., None, None]
        state = decay * state + (dt[:, t, :, None] * x[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(-2)
        outputs.append((state * C[:, t].unsqueeze(-2)).sum(-1) + D[:, None] * x[:, t])
    y = torch.stack(outputs, dim=1)
    return (y if z is None else y * F.silu(z)), state


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return mamba_chunk_scan_combined(**inputs, chunk_size=64, dt_softplus=True, return_final_states=True)


def transformers_oracle(x: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers calls `x` `hidden_states`; a different chunk size keeps the chunking itself under test."""
    return mamba2_chunk_scan(x, **inputs, chunk_size=32, dt_softplus=True, return_final_states=True)


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_states", [False, True])
@pytest.mark.parametrize("oracle", [transformers_oracle, stepwise_ssd], ids=["transformers", "stepwise"])
def test_matches_oracle(length: int, initial_states: bool, oracle) -> None:
    assert_matches_oracle(kernel, oracle, ssd_inputs(length, initial_states))


def test_output_gate_and_per_channel_skip() -> None:
    """`z` gates the output as `y * silu(z)` after the `D` skip, as in mamba-ssm; `D` may be `[H, P]`."""
    inputs = ssd_inputs(100, initial_states=True)
    inputs["z"] = torch.randn(BATCH, 100, HEADS, HEAD_DIM, generator=torch.Generator().manual_seed(3))
    per_channel_d = inputs["D"][:, None].expand(HEADS, HEAD_DIM)
    y, state = kernel(**{**inputs, "D": per_channel_d})
    y_expected, state_expected = stepwise_ssd(**inputs)
    assert relative_error(y, y_expected) <= TOLERANCE
    assert relative_error(state, state_expected) <= TOLERANCE


def test_dt_limit_clamps_the_step_size() -> None:
    inputs = ssd_inputs(50, initial_states=False)
    dt_limit = (0.05, 0.2)
    y = mamba_chunk_scan_combined(**inputs, chunk_size=64, dt_softplus=True, dt_limit=dt_limit)
    clamped_dt = F.softplus(inputs["dt"] + inputs["dt_bias"]).clamp(*dt_limit)
    y_expected, _ = stepwise_ssd(**{**inputs, "dt": clamped_dt.expm1().log(), "dt_bias": torch.zeros(HEADS)})
    assert relative_error(y, y_expected) <= TOLERANCE
