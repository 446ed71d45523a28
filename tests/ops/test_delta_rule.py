"""chunk_delta_rule against fla's naive recurrence `delta_rule_recurrence` (head-first `[B, H, T, D]`, scale
K ** -0.5)."""

from __future__ import annotations

import pytest
import torch
from fla.ops.delta_rule.naive import delta_rule_recurrence
from ops_testing import assert_matches_oracle, random_inputs

from megageo.ops import chunk_delta_rule


def kernel(**inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return chunk_delta_rule(**inputs, output_final_state=True)


def oracle(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, initial_state: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    head_first = (x.transpose(1, 2) for x in (q, k, v, beta))
    o, state = delta_rule_recurrence(*head_first, initial_state=initial_state, output_final_state=True)
    return o.transpose(1, 2), state


@pytest.mark.parametrize("length", [100, 37, 128])
@pytest.mark.parametrize("initial_state", [False, True])
def test_matches_naive_recurrence(length: int, initial_state: bool) -> None:
    inputs = random_inputs("delta_rule", 2, length, 2, 32, initial_state=initial_state)
    assert_matches_oracle(kernel, oracle, inputs)


def test_l2norm_in_kernel_equals_normalising_first() -> None:
    inputs = random_inputs("delta_rule", batch=2, length=70, heads=2, dim=16, initial_state=True)
    raw_q, raw_k = inputs["q"] * 3, inputs["k"] * 5
    o, state = chunk_delta_rule(
        **{**inputs, "q": raw_q, "k": raw_k}, use_qk_l2norm_in_kernel=True, output_final_state=True
    )
    o_expected, state_expected = chunk_delta_rule(
        **{**inputs, "q": torch.nn.functional.normalize(raw_q, dim=-1)}, output_final_state=True
    )
    torch.testing.assert_close(o, o_expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, state_expected, rtol=1e-5, atol=1e-5)
