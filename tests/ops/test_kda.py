"""chunk_kda against fla's `naive_recurrent_kda`."""

from __future__ import annotations

import pytest
import torch
from fla.ops.kda.naive import naive_recurrent_kda
from ops_testing import assert_matches_oracle, random_inputs

from megageo.ops import chunk_gated_delta_rule, chunk_kda


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_kda(**inputs, output_final_state=True)


def oracle(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return naive_recurrent_kda(**inputs, output_final_state=True)


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_state", [False, True])
@pytest.mark.parametrize("strong_decay", [False, True])
def test_matches_naive_recurrence(length: int, initial_state: bool, strong_decay: bool) -> None:
    inputs = random_inputs("kda", 2, length, 2, 32, initial_state=initial_state, strong_decay=strong_decay)
    assert_matches_oracle(kernel, oracle, inputs)


def test_shared_decay_equals_gated_delta_rule() -> None:
    """KDA with the same decay in every channel is Gated DeltaNet."""
    inputs = random_inputs("gated_delta_rule", batch=2, length=100, heads=2, dim=32, initial_state=True)
    per_channel = inputs["g"].unsqueeze(-1).expand_as(inputs["q"])
    o, state = chunk_kda(**{**inputs, "g": per_channel}, output_final_state=True)
    o_expected, state_expected = chunk_gated_delta_rule(**inputs, output_final_state=True)
    torch.testing.assert_close(o, o_expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, state_expected, rtol=1e-5, atol=1e-5)
