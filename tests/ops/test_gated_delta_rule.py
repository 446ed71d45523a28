"""chunk_gated_delta_rule against fla's `naive_recurrent_gated_delta_rule`."""

from __future__ import annotations

import pytest
import torch
from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule
from ops_testing import assert_matches_oracle, random_inputs

from megageo.ops import chunk_gated_delta_rule


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_gated_delta_rule(**inputs, scale=0.2, output_final_state=True)


def oracle(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return naive_recurrent_gated_delta_rule(**inputs, scale=0.2, output_final_state=True)


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_state", [False, True])
@pytest.mark.parametrize("strong_decay", [False, True])
def test_matches_naive_recurrence(length: int, initial_state: bool, strong_decay: bool) -> None:
    inputs = random_inputs("gated_delta_rule", 2, length, 2, 32, initial_state=initial_state, strong_decay=strong_decay)
    assert_matches_oracle(kernel, oracle, inputs)
