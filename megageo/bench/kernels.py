"""Forward+backward time of megageo's chunked CPU kernels against the naive recurrences they replace.

Every op runs on the same random inputs in fla's conventions (log-sigmoid gates, sigmoid betas, l2-normalised
keys) at `[B, T, H, D]`; the table shows, per op and length, the chunked kernel, the naive step-by-step recurrence
(fla's, or fla's scalar-gated one for SSD) and a third-party chunked PyTorch kernel where one exists (Megatron-core's
for the gated delta rule, transformers' for SSD), plus PyTorch's causal softmax attention as the quadratic baseline.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from megageo import ops
from megageo.errors import MegageoError
from megageo.io.atomic import write_text

Inputs = dict[str, torch.Tensor]
Kernel = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class KernelCase:
    """One op: how to build its inputs and the implementations timed on them (each returns the output tensor)."""

    make_inputs: Callable[[int, int, int, int], Inputs]
    chunked: Kernel
    naive: Kernel | None = None
    reference_name: str = ""
    reference: Kernel | None = None


@dataclass(frozen=True)
class Timing:
    op: str
    length: int
    chunked_s: float
    naive_s: float | None
    reference_name: str
    reference_s: float | None


def _linear_attention_inputs(gate: str, normalize_keys: bool, with_beta: bool) -> Callable[..., Inputs]:
    def make(batch: int, length: int, heads: int, dim: int) -> Inputs:
        inputs = {name: torch.randn(batch, length, heads, dim) for name in ("q", "k", "v")}
        if normalize_keys:
            inputs["k"] = F.normalize(inputs["k"], dim=-1)
        if gate == "channel":
            inputs["g"] = F.logsigmoid(torch.randn(batch, length, heads, dim))
        if gate == "head":
            inputs["g"] = F.logsigmoid(torch.randn(batch, length, heads))
        if with_beta:
            inputs["beta"] = torch.randn(batch, length, heads).sigmoid()
        return inputs

    return make


def _ssd_inputs(batch: int, length: int, heads: int, dim: int) -> Inputs:
    """Mamba2 with one B/C group, state size = head dim, dt already through softplus."""
    return {
        "x": torch.randn(batch, length, heads, dim),
        "dt": F.softplus(torch.randn(batch, length, heads) - 2),
        "A": -torch.randn(heads).exp(),
        "B": torch.randn(batch, length, 1, dim),
        "C": torch.randn(batch, length, 1, dim),
    }


def _ssd_as_scalar_gla(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> Inputs:
    """SSD per head is linear attention with query C, key B, value dt x and log decay dt A."""
    heads = x.shape[2]
    return {
        "q": C.expand(-1, -1, heads, -1),
        "k": B.expand(-1, -1, heads, -1),
        "v": x * dt.unsqueeze(-1),
        "g": dt * A,
        "scale": 1.0,
    }


def build_cases() -> dict[str, KernelCase]:
    """Imports the naive and third-party kernels here: fla and Megatron-core are slow to import and noisy."""
    from fla.ops.delta_rule.naive import delta_rule_recurrence
    from fla.ops.gated_delta_rule.naive import naive_recurrent_gated_delta_rule
    from fla.ops.gla.naive import naive_recurrent_gla
    from fla.ops.kda.naive import naive_recurrent_kda
    from fla.ops.simple_gla.naive import naive_recurrent_simple_gla
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.ssm.gated_delta_net import torch_chunk_gated_delta_rule

    def head_first_delta_rule(q, k, v, beta):
        head_first = (x.transpose(1, 2) for x in (q, k, v, beta))
        return delta_rule_recurrence(*head_first, output_final_state=False)[0]

    return {
        "gla": KernelCase(
            make_inputs=_linear_attention_inputs("channel", normalize_keys=False, with_beta=False),
            chunked=lambda **x: ops.chunk_gla(**x)[0],
            naive=lambda g, **x: naive_recurrent_gla(gk=g, **x)[0],
        ),
        "delta_rule": KernelCase(
            make_inputs=_linear_attention_inputs("none", normalize_keys=True, with_beta=True),
            chunked=lambda **x: ops.chunk_delta_rule(**x)[0],
            naive=head_first_delta_rule,
        ),
        "gated_delta_rule": KernelCase(
            make_inputs=_linear_attention_inputs("head", normalize_keys=True, with_beta=True),
            chunked=lambda **x: ops.chunk_gated_delta_rule(**x)[0],
            naive=lambda **x: naive_recurrent_gated_delta_rule(**x)[0],
            reference_name="megatron-core torch_chunk_gated_delta_rule",
            reference=lambda q, k, v, g, beta: torch_chunk_gated_delta_rule(q, k, v, g, beta)[0],
        ),
        "kda": KernelCase(
            make_inputs=_linear_attention_inputs("channel", normalize_keys=True, with_beta=True),
            chunked=lambda **x: ops.chunk_kda(**x)[0],
            naive=lambda **x: naive_recurrent_kda(**x)[0],
        ),
        "ssd": KernelCase(
            make_inputs=_ssd_inputs,
            chunked=lambda **x: ops.mamba_chunk_scan_combined(**x, chunk_size=ops.CHUNK_SIZE),
            naive=lambda **x: naive_recurrent_simple_gla(**_ssd_as_scalar_gla(**x))[0],
            reference_name="transformers mamba2_chunk_scan",
            reference=lambda x, **rest: mamba2_chunk_scan(x, **rest, chunk_size=ops.CHUNK_SIZE),
        ),
        "attention": KernelCase(
            make_inputs=_linear_attention_inputs("none", normalize_keys=False, with_beta=False),
            chunked=ops.causal_attention,
        ),
    }


def time_forward_backward(kernel: Kernel, inputs: Inputs) -> float:
    """Seconds for one forward and one backward pass through every floating-point input."""
    leaves = {name: x.clone().requires_grad_() if x.is_floating_point() else x for name, x in inputs.items()}
    start = time.perf_counter()
    kernel(**leaves).sum().backward()
    return time.perf_counter() - start


def run(
    cases: dict[str, KernelCase], lengths: Sequence[int], naive_max_len: int, batch: int, heads: int, head_dim: int
) -> list[Timing]:
    """Times every case at every length, printing each row as soon as it is measured (16K rows take a while)."""
    timings = []
    for name, case in cases.items():
        time_forward_backward(case.chunked, case.make_inputs(batch, ops.CHUNK_SIZE, heads, head_dim))
        for length in lengths:
            torch.manual_seed(length)
            inputs = case.make_inputs(batch, length, heads, head_dim)
            run_naive = case.naive is not None and length <= naive_max_len
            timing = Timing(
                op=name,
                length=length,
                chunked_s=time_forward_backward(case.chunked, inputs),
                naive_s=time_forward_backward(case.naive, inputs) if run_naive else None,
                reference_name=case.reference_name,
                reference_s=time_forward_backward(case.reference, inputs) if case.reference else None,
            )
            print(format_row(timing, naive_max_len, has_naive=case.naive is not None), flush=True)
            timings.append(timing)
    return timings


HEADER = f"{'op':<18}{'T':>7}{'chunked s':>11}{'ms/1K steps':>13}{'naive s':>18}{'naive/chunked':>15}  reference"


def format_row(timing: Timing, naive_max_len: int, has_naive: bool) -> str:
    per_thousand_ms = 1e6 * timing.chunked_s / timing.length
    if timing.naive_s is not None:
        naive = f"{timing.naive_s:>18.3f}{timing.naive_s / timing.chunked_s:>14.1f}x"
    else:
        naive = f"{'skipped (> ' + str(naive_max_len) + ')' if has_naive else '-':>18}{'':>15}"
    reference = ""
    if timing.reference_s is not None:
        ratio = timing.reference_s / timing.chunked_s
        reference = f"  {timing.reference_s:.3f} s ({ratio:.1f}x the chunked time): {timing.reference_name}"
    return f"{timing.op:<18}{timing.length:>7}{timing.chunked_s:>11.3f}{per_thousand_ms:>13.1f}{naive}{reference}"


def crossover_summary(timings: Sequence[Timing]) -> list[str]:
    """For each linear op, the shortest measured length at which it beats causal softmax attention."""
    attention = {t.length: t.chunked_s for t in timings if t.op == "attention"}
    if not attention:
        return []
    lines = []
    for op in dict.fromkeys(t.op for t in timings if t.op != "attention"):
        faster = [t.length for t in timings if t.op == op and t.chunked_s < attention.get(t.length, 0.0)]
        verdict = f"faster than attention from T = {min(faster)}" if faster else "slower than attention at every T"
        lines.append(f"{op}: {verdict} (measured T: {', '.join(str(length) for length in sorted(attention))})")
    return lines


def main(
    op_names: Sequence[str],
    lengths: Sequence[int],
    naive_max_len: int,
    batch: int,
    heads: int,
    head_dim: int,
    threads: int,
    json_path: Path | None,
) -> int:
    cases = build_cases()
    unknown = sorted(set(op_names) - cases.keys())
    if unknown:
        raise MegageoError(f"unknown op(s) {', '.join(unknown)}; choose from {', '.join(cases)}")
    torch.set_num_threads(threads)
    print(f"fp32 forward+backward, B={batch} H={heads} D={head_dim}, {threads} thread(s), one run per cell")
    print(HEADER)
    timings = run({name: cases[name] for name in op_names}, lengths, naive_max_len, batch, heads, head_dim)
    for line in crossover_summary(timings):
        print(line)
    if json_path is not None:
        write_text(json_path, json.dumps([asdict(t) for t in timings], indent=2) + "\n")
    return 0
