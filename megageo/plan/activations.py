"""What one block keeps for its backward pass, tensor by tensor, read from the mixer's own structure.

Megatron's accounting (Korthikanti et al., 2022, "Reducing Activation Recomputation in Large Transformer Models";
Megatron-LM `training/theoretical_memory_usage.py`) gives a Transformer layer s·b·h·(34 + 5·a·s/h) bytes in
16-bit training, 34·s·b·h/t with tensor and sequence parallelism and selective recompute, 2·s·b·h under full
recompute. Its constant 34 is the Transformer's list of kept tensors; here every mixer gets its own list, from the
same information the layer is built from: the fused projection's segments (`projection_segments()`), the short
convolution's channels, the gates each mixer computes, its kernel's kept intermediates (`kernels.py`), its output
norm, and the SwiGLU width. Each entry says how tensor and sequence parallelism divide it:

- `tp`: split by heads (projection outputs, kernel tensors, per-head norms) — divided by the TP degree;
- `sp`: residual-stream wide (block input, norm internals) — divided by TP only under sequence parallelism;
- `full`: inputs of column-parallel layers, which megageo gathers to the whole sequence under SP and keeps
  (Megatron instead re-gathers them in backward) — never divided;
- `position`: tables per position shared by a batch (RoPE's cos/sin) — not multiplied by the micro-batch.

Counts are per frame (or per sample, for the conv's padding) at TP = 1. tests/plan/test_activations.py checks every
mixer's list against the tensors autograd actually saves in a block on this machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import SimpleNamespace

from megageo.config import ModelConfig
from megageo.model.mlp import swiglu_width
from megageo.model.registry import MIXERS
from megageo.plan.kernels import CHUNK, Kept, cpu_kernel, fused_kernel, token_kernel


@dataclass(frozen=True)
class Term:
    name: str
    values: float
    split: str
    fp32: bool = False
    sublayer: str = "mixer"
    """`mixer` or `mlp`: what activation checkpointing recomputes together."""
    per_sample: bool = False
    """Values per sample instead of per frame (the conv's causal padding)."""
    batched: bool = False
    """Kept only when the micro-batch exceeds 1: a copy that makes a [b, s, ·] view of an [s, b, ·] tensor
    contiguous (for b = 1 the view already is)."""

    def bytes(self, frames: float, batch: int, tp: int, sequence_parallel: bool, activation_bytes: int) -> float:
        """Bytes on one rank that holds `frames` frames of each of `batch` samples."""
        if self.batched and batch == 1:
            return 0.0
        divisor = {"tp": tp, "sp": tp if sequence_parallel else 1, "full": 1, "position": 1}[self.split]
        count = frames if self.split == "position" else batch * (1 if self.per_sample else frames)
        return self.values * count * (4 if self.fp32 else activation_bytes) / divisor


def total_bytes(terms: list[Term], frames: float, batch: int, tp: int, sequence_parallel: bool,
                activation_bytes: int) -> float:
    return sum(term.bytes(frames, batch, tp, sequence_parallel, activation_bytes) for term in terms)


@dataclass(frozen=True)
class MixerShape:
    """The structure of one mixer layer, as the layer itself declares it."""

    type: str
    segments: dict[str, int]
    output_width: int
    conv_width: int
    conv_size: int
    heads: int
    key: float
    value: float

    @classmethod
    def of(cls, model: ModelConfig) -> MixerShape:
        mixer, hidden = model.mixer, model.hidden_size
        layer = MIXERS[type(mixer)]
        stand_in = SimpleNamespace(config=mixer, hidden_size=hidden)
        stand_in.segments = layer.projection_segments(stand_in)
        output_width = layer.output_width(stand_in)
        convolved = layer.conv_segments if getattr(mixer, "use_short_conv", False) else ()
        conv_width = sum(stand_in.segments[name] for name in convolved)
        heads = mixer.num_heads
        if mixer.type == "mamba2":
            key, value = mixer.state_size, mixer.head_dim
        elif mixer.type in ("transformer", "global_linear"):
            key = value = mixer.head_dim
        else:
            key, value = stand_in.segments["k"] / heads, output_width / heads
        return cls(mixer.type, stand_in.segments, output_width, conv_width, getattr(mixer, "conv_size", 0), heads,
                   key, value)


KERNEL_KIND = {"gla": "gla", "mamba2": "ssd", "deltanet": "delta", "gated_deltanet": "gated_delta", "kda": "kda",
               "transformer": "attention", "global_linear": "global_linear"}


def pre_norm(hidden: int, sublayer: str) -> list[Term]:
    """RMSNorm before a sub-layer: its fp32 input and normalised values, the rms, and its output as the (gathered)
    input of the column-parallel projection that follows."""
    return [Term("norm input (fp32)", hidden, "sp", True, sublayer), Term("rms", 1, "sp", True, sublayer),
            Term("normalised (fp32)", hidden, "sp", True, sublayer),
            Term("projection input", hidden, "full", False, sublayer)]


def mlp_terms(model: ModelConfig) -> list[Term]:
    width = swiglu_width(model.hidden_size, model.ffn_hidden_size)
    return [*pre_norm(model.hidden_size, "mlp"), Term("[gate | up]", 2 * width, "tp", sublayer="mlp"),
            Term("silu(gate)", width, "tp", sublayer="mlp"), Term("silu(gate)·up", width, "tp", sublayer="mlp")]


def kernel_terms(kept: list[Kept], heads: int, padding: float) -> list[Term]:
    return [Term(f"kernel: {k.name}", k.values * heads * padding, "tp", k.fp32) for k in kept]


def layer_terms(model: ModelConfig, kernels: str, frames: float = math.inf, cp: int = 1,
                tokens_per_frame: int = 1) -> list[Term]:
    """Everything one block keeps, for `frames` positions per rank (kernels pad to whole chunks) at CP degree `cp`;
    a position is a frame, or a token of a token model with `tokens_per_frame` tokens a frame."""
    shape = MixerShape.of(model)
    padding = 1.0 if math.isinf(frames) else math.ceil(frames / CHUNK) * CHUNK / frames
    frame_causal = model.frame_causal and model.tokens == "patch"
    terms = pre_norm(model.hidden_size, "mixer")
    if shape.type == "transformer":
        terms += transformer_terms(shape, kernels)
        if frame_causal and not math.isinf(frames):  # the block-causal mask, as an fp32 bias: s/cp × s per layer
            terms.append(Term("frame-causal mask (fp32)", frames * cp, "position", True))
    elif shape.type == "global_linear":
        terms += global_linear_terms(shape)
    else:
        terms += linear_terms(model, shape, kernels, padding, cp, tokens_per_frame if frame_causal else 0)
    if model.mixer.has_mlp:
        terms += mlp_terms(model)
    return terms


def transformer_terms(shape: MixerShape, kernels: str) -> list[Term]:
    width = shape.heads * shape.key
    terms = [Term("[q | k | v] projection", 3 * width, "tp"),
             Term("RoPE cos/sin (two calls)", 2 * shape.key, "position", True),
             Term("rotated q, k", 2 * width, "tp")]
    if kernels == "fused":
        terms.append(Term("q, k in fp32 for RoPE", 2 * width, "tp", True))
    kernel = cpu_kernel if kernels == "cpu" else fused_kernel
    terms += kernel_terms(kernel("attention", shape.key, shape.value), shape.heads, 1.0)
    return terms + [Term("out_proj input copy", width, "tp", batched=True)]


def linear_terms(model: ModelConfig, shape: MixerShape, kernels: str, padding: float, cp: int,
                 frame_causal_tokens: int = 0) -> list[Term]:
    """The `LinearAttentionMixer` skeleton: projection → short conv → gates → kernel → gated RMSNorm → out_proj.
    `frame_causal_tokens`: the tokens of a frame where the kernel is frame-causal (0: the causal chunk kernel)."""
    mixer, hidden, heads = model.mixer, model.hidden_size, shape.heads
    kind = shape.type
    gate_segment = kind in ("gla", "gated_deltanet", "mamba2") or getattr(mixer, "use_output_gate", False)
    gated_output = gate_segment or kind == "kda"  # KDA's gate comes from its own low-rank projection
    terms = []
    if gate_segment:  # the saved gate is a view, and keeps the whole fused projection alive
        terms.append(Term("fused projection", sum(shape.segments.values()), "tp"))
    if shape.conv_width:
        conv = shape.conv_width
        terms += [Term("conv input", conv, "tp"), Term("conv output", conv, "tp"),
                  Term("conv causal padding", conv * (shape.conv_size - 1), "tp", per_sample=True)]
        if kind == "mamba2" or frame_causal_tokens or (kind in ("deltanet", "gated_deltanet", "kda") and kernels == "cpu"):
            terms.append(Term("conv activation (read by l2norm / SSD / the frame-causal kernel)", conv, "tp"))
    if kind in ("deltanet", "gated_deltanet", "kda"):
        terms.append(Term("q, k l2-norm rsqrt", 2 * heads, "tp", True))
        if kernels == "fused":
            terms.append(Term("q, k in fp32 for l2-norm", 2 * heads * shape.key, "tp", True))
        terms.append(Term("β = sigmoid", heads, "tp"))
    if kind == "gated_deltanet":
        terms.append(Term("decay softplus in/out", 2 * heads, "tp", True))
    if kind == "kda":
        terms += [Term("decay softplus in/out", 2 * heads * shape.key, "tp", True),
                  Term("low-rank forget and gate inputs", 2 * mixer.head_dim, "full"),
                  Term("low-rank gate inputs, batch-major copies", 2 * hidden, "full", batched=True)]
    if kind == "gla":
        terms += [Term("low-rank forget input", mixer.gate_low_rank_dim, "full"),
                  Term("log-sigmoid forget gate", 2 * shape.segments["k"], "tp", True),
                  Term("low-rank gate input, batch-major copy", hidden, "full", batched=True)]
    if frame_causal_tokens:
        terms += frame_causal_terms(shape, frame_causal_tokens, cp)
    else:
        terms += recurrence_terms(shape, kernels, padding, cp)
    width = shape.output_width
    if kind == "mamba2":
        groups = mixer.n_groups
        terms += [Term("kernel output (fp32)", width, "tp", True), Term("silu(gate)", width, "tp", True),
                  Term("gated output", width, "tp", True), Term("group rms", groups, "tp", True),
                  Term("normalised", width, "tp", True)]
    else:
        terms += [Term("kernel output (fp32)", width, "tp", True), Term("head rms", heads, "tp", True),
                  Term("normalised", width, "tp", True)]
        if gated_output:
            terms += [Term("weighted", width, "tp", True), Term("gate activation", width, "tp", True)]
    return terms + [Term("out_proj input", width, "tp")]


def recurrence_terms(shape: MixerShape, kernels: str, padding: float, cp: int) -> list[Term]:
    """The kernel's kept tensors; under context parallelism, what state passing adds (`model/state_passing.py`):
    the delta rules run the kernel widened from V to V + K value columns (the transition rides along) and keep the
    widened output, whose last K columns read the initial state; GLA and Mamba2 have diagonal transitions in
    closed form and keep the read-out scale·q·exp(Σg) (fp32) instead."""
    kind = KERNEL_KIND[shape.type]
    widened = cp > 1 and kind in ("delta", "gated_delta", "kda")
    value = shape.value + (shape.key if widened else 0)
    kernel = cpu_kernel if kernels == "cpu" else fused_kernel
    terms = kernel_terms(kernel(kind, shape.key, value), shape.heads, padding)
    if widened:
        terms.append(Term("CP: widened kernel output", shape.heads * value, "tp", True))
    elif cp > 1:
        terms.append(Term("CP: state read-out q·exp(Σg) and its cumsum", 3 * shape.heads * shape.key, "tp", True))
    return terms


def frame_causal_terms(shape: MixerShape, tokens_per_frame: int, cp: int) -> list[Term]:
    """Frame-causal GLA or SSD (`ops/frame_causal.py`, the same PyTorch on every device): per token its kept operands,
    per frame its state before the update and the stacked read-out states. Under CP the kernel runs widened by K
    value columns (the generic state passing) and keeps the widened output."""
    kind = "frame_" + KERNEL_KIND[shape.type]
    value = shape.value + (shape.key if cp > 1 else 0)
    terms = kernel_terms(token_kernel(kind, shape.key, value), shape.heads, 1.0)
    decay = shape.key if shape.type == "gla" else 1  # GLA decays per channel, SSD per head
    per_frame = 2 * shape.key * value + decay  # the state before each update, the stacked read-out, the decay
    terms.append(Term("frame states and decays", shape.heads * per_frame / tokens_per_frame, "tp", True))
    if cp > 1:
        terms.append(Term("CP: widened kernel output", shape.heads * value, "tp", True))
    return terms


def global_linear_terms(shape: MixerShape) -> list[Term]:
    """Projection (the gate is a view of it) → φ(q), φ(k) → the global state and its read-out → gated RMSNorm."""
    width = shape.output_width
    return [Term("fused projection", sum(shape.segments.values()), "tp"),
            *kernel_terms(token_kernel("global_linear", shape.key, shape.value), shape.heads, 1.0),
            Term("v as einsum operand, batch-major copy", width, "tp", True, batched=True),
            Term("global state [K × V] per head", shape.heads * shape.key * shape.value, "tp", True, per_sample=True),
            Term("kernel output (fp32)", width, "tp", True), Term("head rms", shape.heads, "tp", True),
            Term("normalised", width, "tp", True), Term("weighted", width, "tp", True),
            Term("gate activation", width, "tp", True), Term("out_proj input", width, "tp")]


def head_terms(hidden: int) -> list[Term]:
    """The final norm before the forecast head (which reads one position: negligible)."""
    return [replace(term, sublayer="head") for term in pre_norm(hidden, "head")]


def backward_workspace(model: ModelConfig) -> float:
    """Values per frame that backward holds above the kept activations, at its peak: differentiating the last
    block's SwiGLU holds the gradients of its product and of both factors (3F) once the product (F) and the final
    norm's tensors (2h) are freed: 2F − 2h; a Mamba2 block, gradients of its gated output and of its kernel
    output: 2 × the inner width. Measured on this machine (tests/plan): 1.47-1.77 F for h = 32-256 with an MLP,
    2.0-2.1 × inner for Mamba2."""
    if model.mixer.has_mlp:
        return 2 * swiglu_width(model.hidden_size, model.ffn_hidden_size) - 2 * model.hidden_size
    return 2 * MixerShape.of(model).output_width
