"""chunk_gated_delta_rule against fla's `naive_recurrent_gated_delta_rule`."""

from __future__ import annotations

import pytest
import torch
from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule
from ops_testing import TOLERANCE, compare_with_oracle, random_inputs

from megageo.ops import chunk_gated_delta_rule


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_gated_delta_rule(**inputs, scale=0.2, output_final_state=True)


def oracle(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return naive_recurrent_gated_delta_rule(**inputs, scale=0.2, output_final_state=True)


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_state", [False, True])
def test_matches_naive_recurrence(length: int, initial_state: bool) -> None:
    inputs = random_inputs("gated_delta_rule", batch=2, length=length, heads=2, dim=32, initial_state=initial_state)
    errors = compare_with_oracle(kernel, oracle, inputs)
    assert max(errors.values()) <= TOLERANCE, errors


def test_strong_decay_stays_finite_and_exact() -> None:
    """Gates averaging -4 per step sum to about -270 over a chunk: exp(-cumsum(g)) would overflow float32."""
    inputs = random_inputs("gated_delta_rule", batch=2, length=100, heads=2, dim=32, initial_state=True)
    inputs["g"] = inputs["g"] * 4 - 1
    errors = compare_with_oracle(kernel, oracle, inputs)
    assert max(errors.values()) <= TOLERANCE, errors
