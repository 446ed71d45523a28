"""On CUDA the ops run fla's (and mamba-ssm's, when installed) Triton kernels; they must agree with megageo's CPU
kernels on the same inputs. Triton uses TF32 matrix products, hence the looser tolerance than the oracle tests."""

from __future__ import annotations

import pytest
import torch
from ops_testing import compare_with_oracle
from test_shared_conventions import OPS

CUDA_TOLERANCE = 5e-3

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("op_name", OPS)
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_cuda_path_matches_cpu_kernel(op_name: str, with_initial_state: bool) -> None:
    op, make_inputs = OPS[op_name]
    inputs = make_inputs(100)
    if with_initial_state:
        _, inputs["initial_state"] = op(**make_inputs(50))

    def on_cuda(**cpu_inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o, state = op(**{name: x.cuda() for name, x in cpu_inputs.items()})
        return o.cpu(), state.cpu()

    errors = compare_with_oracle(on_cuda, op, inputs)
    assert max(errors.values()) <= CUDA_TOLERANCE, errors
