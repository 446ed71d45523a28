"""chunk_gla against fla's naive recurrence `naive_recurrent_gla` (which always uses scale K ** -0.5)."""

from __future__ import annotations

import pytest
import torch
from fla.ops.gla.naive import naive_recurrent_gla
from ops_testing import assert_matches_oracle, random_inputs

from megageo.ops import chunk_gla


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_gla(**inputs, output_final_state=True)


def oracle(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return naive_recurrent_gla(**inputs, output_final_state=True)


def oracle_with_gk(g: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return oracle(gk=g, **inputs)


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_state", [False, True])
@pytest.mark.parametrize("strong_decay", [False, True])
def test_matches_naive_recurrence(length: int, initial_state: bool, strong_decay: bool) -> None:
    inputs = random_inputs("gla", 2, length, 2, 32, initial_state=initial_state, strong_decay=strong_decay)
    assert_matches_oracle(kernel, oracle_with_gk, inputs)


def test_explicit_scale_scales_the_queries() -> None:
    inputs = random_inputs("gla", batch=2, length=70, heads=2, dim=16, initial_state=True)
    o, state = chunk_gla(**inputs, scale=0.3, output_final_state=True)
    rescaled_q = inputs["q"] * 0.3 / 16**-0.5
    o_expected, state_expected = chunk_gla(**{**inputs, "q": rescaled_q}, output_final_state=True)
    torch.testing.assert_close(o, o_expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, state_expected, rtol=0, atol=0)
