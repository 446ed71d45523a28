"""The block summary behind context parallelism: one kernel call on values [v | 0] from the initial state [0 | I]
yields the block's transition M (S_T = M S_0 + S_T from zero). Checked, in float64, against the explicit
ordered product of the per-step transitions A_T ⋯ A_1 written from each recurrence's definition:

    GLA               A_t = Diag(exp g_t)
    DeltaNet          A_t = I − β_t k_t k_tᵀ
    Gated DeltaNet    A_t = (I − β_t k_t k_tᵀ) exp(g_t)
    KDA               A_t = (I − β_t k_t k_tᵀ) Diag(exp g_t)
    Mamba2 (SSD)      A_t = exp(Δ_t A) I,  Δ_t = softplus(dt_t + dt_bias)

and the split by linearity (outputs from S_0 = outputs from zero + readout · S_0) against running the kernel from
a random S_0. For the diagonal recurrences (GLA, SSD) the closed form from the gates that context parallelism
uses instead is checked against that general summary.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ops_testing import random_inputs
from test_ssd import ssd_inputs

from megageo.model.mixers.base import fla_recurrence
from megageo.model.state_passing import DiagonalDecay, summarize_block, summarize_diagonal_block
from megageo.ops import chunk_delta_rule, chunk_gated_delta_rule, chunk_gla, chunk_kda, mamba_chunk_scan_combined

LENGTH = 100  # not a multiple of the 64-step chunk
TOLERANCE = 1e-10


def step_transitions(op: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A_t of every step, [B, T, H, K, K]."""
    if op == "ssd":
        decay = (F.softplus(inputs["dt"] + inputs["dt_bias"]) * inputs["A"]).exp()  # [B, T, H]
        key_dim = inputs["B"].shape[-1]
        return decay[..., None, None] * torch.eye(key_dim, dtype=decay.dtype)
    k = inputs["k"]
    key_dim = k.shape[-1]
    eye = torch.eye(key_dim, dtype=k.dtype)
    if op == "gla":
        return torch.diag_embed(inputs["g"].exp())
    householder = eye - inputs["beta"][..., None, None] * k.unsqueeze(-1) * k.unsqueeze(-2)
    if op == "delta_rule":
        return householder
    if op == "gated_delta_rule":
        return householder * inputs["g"].exp()[..., None, None]
    return householder @ torch.diag_embed(inputs["g"].exp())


def recurrence(op: str, inputs: dict[str, torch.Tensor]):
    """(values, key width, kernel of (values, initial state)) as the mixers hand them to state passing."""
    if op == "ssd":
        def kernel(values, state):
            out = mamba_chunk_scan_combined(
                values, inputs["dt"], inputs["A"], inputs["B"], inputs["C"], 64, D=inputs["D"],
                dt_bias=inputs["dt_bias"], dt_softplus=True,
                initial_states=None if state is None else state.transpose(-1, -2), return_final_states=state is not None,
            )
            return (out, None) if state is None else (out[0], out[1].transpose(-1, -2))

        return inputs["x"], inputs["B"].shape[-1], kernel
    ops = {"gla": (chunk_gla, ("g",)), "delta_rule": (chunk_delta_rule, ("beta",)),
           "gated_delta_rule": (chunk_gated_delta_rule, ("g", "beta")), "kda": (chunk_kda, ("g", "beta"))}
    fn, gates = ops[op]
    kernel = fla_recurrence(fn, inputs["q"], inputs["k"], *(inputs[name] for name in gates))
    return inputs["v"], inputs["k"].shape[-1], kernel


def float64_inputs(op: str) -> dict[str, torch.Tensor]:
    if op == "ssd":
        inputs = ssd_inputs(LENGTH, initial_states=False)
        inputs["B"] = inputs["B"].repeat_interleave(inputs["x"].shape[2] // inputs["B"].shape[2], dim=2)
        inputs["C"] = inputs["C"].repeat_interleave(inputs["x"].shape[2] // inputs["C"].shape[2], dim=2)
    else:
        inputs = random_inputs(op, 2, LENGTH, 2, 16, initial_state=False)
    return {name: x.double() for name, x in inputs.items()}


OPS = ["gla", "delta_rule", "gated_delta_rule", "kda", "ssd"]


@pytest.mark.parametrize("op", OPS)
def test_transition_is_the_product_of_step_transitions(op: str) -> None:
    inputs = float64_inputs(op)
    values, key_dim, kernel = recurrence(op, inputs)
    block = summarize_block(kernel, values, key_dim)
    expected = torch.eye(key_dim, dtype=torch.float64).expand(*values.shape[::2][:2], key_dim, key_dim)
    for step in step_transitions(op, inputs).unbind(1):
        expected = step @ expected
    error = (block.transition - expected).abs().max() / expected.abs().max()
    assert block.transition.dtype == torch.float64
    assert error <= TOLERANCE, f"{op}: transition differs from the product of step transitions by {error:.2e}"


@pytest.mark.parametrize("op", ["gla", "ssd"])
def test_diagonal_closed_form_equals_the_general_summary(op: str) -> None:
    inputs = float64_inputs(op)
    values, key_dim, kernel = recurrence(op, inputs)
    general = summarize_block(kernel, values, key_dim)
    if op == "gla":
        decay = DiagonalDecay(inputs["g"], inputs["q"], key_dim**-0.5)
    else:
        step = F.softplus(inputs["dt"] + inputs["dt_bias"])
        decay = DiagonalDecay((step * inputs["A"]).unsqueeze(-1), inputs["C"], 1.0)
    diagonal = summarize_diagonal_block(kernel, values, decay)
    for name in ("outputs", "state_readout", "final_state"):
        expected = getattr(general, name)
        assert (getattr(diagonal, name) - expected).abs().max() <= TOLERANCE * expected.abs().max(), name
    assert torch.allclose(torch.diag_embed(diagonal.transition.squeeze(-1)), general.transition, rtol=0, atol=1e-12)


@pytest.mark.parametrize("op", OPS)
def test_outputs_split_by_linearity_in_the_initial_state(op: str) -> None:
    inputs = float64_inputs(op)
    values, key_dim, kernel = recurrence(op, inputs)
    block = summarize_block(kernel, values, key_dim)
    initial = torch.randn(values.shape[0], values.shape[2], key_dim, values.shape[-1], dtype=torch.float64,
                          generator=torch.Generator().manual_seed(5))
    outputs, final = kernel(values, initial)
    predicted_outputs = block.outputs + torch.einsum("bthk,bhkv->bthv", block.state_readout, initial)
    predicted_final = block.transition @ initial + block.final_state
    assert (predicted_outputs - outputs).abs().max() <= TOLERANCE * outputs.abs().max()
    assert (predicted_final - final).abs().max() <= TOLERANCE * final.abs().max()
