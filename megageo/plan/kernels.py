"""What each sequence kernel keeps for its backward pass, per head and per frame.

Counts are values (multiply by the bytes of their dtype), for one head of key width K and value width V, chunk C.
They cover the tensors a kernel creates and keeps; its inputs are views of the mixer's projections and are counted
with the mixer (`activations.py`).

CPU (`megageo.ops`, chunked PyTorch, float32 inside): autograd keeps the kernel's intermediates, counted from its
autograd graph (every saved tensor once per storage, tests/plan/test_activations.py checks the totals):
- the intra-chunk score tensors, one [C × C] per chunk per head and per product: C values per frame each;
- the chunk states, one [K × V] per chunk before each update and once stacked for the read-out: 2KV/C;
- chunked, rescaled and transposed copies of q, k, v, gates (the K and V terms); per-channel decays (GLA, KDA)
  build their scores by a 64 → 16 → 4 block recursion that keeps rescaled copies of q and k at each level
  (≈ 27K per frame for each score product);
- the delta rules (DeltaNet, Gated DeltaNet, KDA) add the chunk's unit-triangular solve: the matrix, its
  right-hand side [k | v] and its solution [w | u].

GPU (fla's chunk kernels, mamba-ssm's SSD scan, flash attention): the fused kernels keep their inputs (contiguous
copies of q, k, v), fp32 cumulative gates and one [C]-wide intra-chunk matrix per head and frame (fla's `A`), and
recompute the chunk states in backward (`save_for_backward` of fla 0.6's ChunkGLAFunction,
ChunkGatedDeltaRuleFunction, ChunkDeltaRuleFunction, ChunkKDAFunction; mamba-ssm's MambaChunkScanCombinedFn keeps
its output, dt and its inputs). These counts are read from those sources, not measured here.
"""

from __future__ import annotations

from dataclasses import dataclass

CHUNK = 64
"""`megageo.ops.CHUNK_SIZE`, fla's default chunk and Mamba2's SSD chunk in megageo."""


@dataclass(frozen=True)
class Kept:
    """Values kept per head and frame, by what they are, and whether they stay fp32 under bf16 training."""

    name: str
    values: float
    fp32: bool


def cpu_kernel(kind: str, key: float, value: float, chunk: int = CHUNK) -> list[Kept]:
    """megageo's chunked CPU kernels (everything fp32)."""
    states = Kept("chunk states", 2 * key * value / chunk, True)
    if kind == "gla":  # per-channel decay: chunk_gated_linear_attention with g [..., K]
        return [Kept("intra-chunk scores", chunk, True), Kept("per-channel decay recursion", 27.25 * key, True),
                Kept("rescaled q/k operands", 4 * key, True), Kept("value copies", 2 * value, True), states]
    if kind == "ssd":  # scalar decay per head; B, C repeated to heads; dt softplus, D skip
        return [Kept("intra-chunk scores and decay mask", 3 * chunk, True), Kept("B/C operands", 6 * key, True),
                Kept("dt·x values", 2 * value, True), Kept("dt, dt·A", 4, True), states]
    if kind in ("delta", "gated_delta"):  # scalar (or no) decay, WY/UT solve per chunk
        scores = 5 if kind == "delta" else 7
        keys = 8 if kind == "delta" else 10
        return [Kept("intra-chunk scores, decay masks, triangular solve", scores * chunk, True),
                Kept("key operands, [k | v] right-hand side and solution", keys * key + 4 * value, True),
                Kept("β, gates", 4, True), states]
    if kind == "kda":  # per-channel decay and the delta rule: two recursive score products
        return [Kept("intra-chunk scores, triangular solve", 3 * chunk, True),
                Kept("per-channel decay recursion (k·k and q·k)", 54.5 * key, True),
                Kept("key operands", 5 * key, True), Kept("[k | v] right-hand side and solution", 4 * value, True),
                Kept("β", 1, True), states]
    if kind == "attention":  # torch SDPA's CPU flash kernel: output and log-sum-exp
        return [Kept("attention output", value, False), Kept("log-sum-exp", 1, True)]
    return token_kernel(kind, key, value)


def token_kernel(kind: str, key: float, value: float) -> list[Kept]:
    """The token mixers' kernels, the same PyTorch on every device (`ops/frame_causal.py`, `ops/global_linear.py`).
    Frame-causal GLA/SSD keep per token the decays and the einsums' copies of q, k, v (3K + V), SSD also its keys
    B·dt with B, its step and log decay (4K + V + 3); per frame two [K × V] states (counted by `activations`). Global linear
    attention keeps φ(q) and φ(k) as its einsums' operands."""
    if kind == "frame_gla":
        return [Kept("decays and the einsums' q, k, v operands", 3 * key + value, True)]
    if kind == "frame_ssd":  # keys are B·dt: B repeated to heads and the product are kept too
        return [Kept("B, B·dt, decays and the einsums' q, k, v operands", 4 * key + value + 1, True),
                Kept("step and log decay", 2, True)]
    if kind == "global_linear":
        return [Kept("feature maps φ(q), φ(k) as einsum operands", 2 * key, True)]
    raise ValueError(f"unknown kernel kind {kind!r}")


def fused_kernel(kind: str, key: float, value: float, chunk: int = CHUNK) -> list[Kept]:
    """fla / mamba-ssm / flash-attention kernels on GPU (activation dtype unless fp32)."""
    qkv = Kept("q, k, v copies", 2 * key + value, False)
    if kind == "gla":
        return [qkv, Kept("log gates and their chunk cumsum", 2 * key, True), Kept("intra-chunk A", chunk, True)]
    if kind == "ssd":
        return [Kept("output", value, False), Kept("dt", 1, True)]
    if kind == "delta":
        return [qkv, Kept("β", 1, False), Kept("intra-chunk A", chunk, False)]
    if kind == "gated_delta":
        return [qkv, Kept("β", 1, False), Kept("gate cumsum", 1, True), Kept("intra-chunk A", chunk, False)]
    if kind == "kda":
        return [qkv, Kept("β", 1, False), Kept("gates and their cumsum", 2 * key, True),
                Kept("intra-chunk Aqk, Akk", 2 * chunk, True)]
    if kind == "attention":
        return [Kept("attention output", value, False), Kept("log-sum-exp", 1, True)]
    return token_kernel(kind, key, value)
