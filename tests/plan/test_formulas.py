"""The planner's formulas against hand-computed values, and its ZeRO accounting against DeepSpeed's own estimators."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from megageo.plan.activations import Term, mlp_terms
from megageo.plan.cost import ring
from megageo.plan.device import DEVICES
from megageo.plan.layouts import candidates
from megageo.plan.memory import REDUCE_BUCKET, Layout, cp_exchange_bytes, model_states, stage_params

P, LARGEST = 1_000_000, 100_000
BF16, FP32 = DEVICES["a100-bf16"], DEVICES["cpu-fp32"]


def states(zero: int, device=BF16, dp: int = 4, cp: int = 2) -> tuple[float, float, float]:
    return model_states(SimpleNamespace(largest_layer=LARGEST), Layout(1, cp, 1, dp, zero, False), device, P)


def test_zero_stages_by_hand() -> None:
    """N = DP × CP = 8 ranks share the weights; bf16: 2 + (2 + 4) + (4 + 8) bytes per parameter."""
    assert states(0) == (2 * P, 6 * P, 12 * P)
    assert states(1) == (2 * P, 6 * P + REDUCE_BUCKET * 4, 12 * P / 8)
    assert states(2) == (2 * P, 6 * P / 8 + REDUCE_BUCKET * 2, 12 * P / 8)
    assert states(3) == (2 * P / 8 + 4 * LARGEST, 4 * P / 8, 12 * P / 8)
    assert states(0, FP32) == (4 * P, 4 * P, 8 * P)  # fp32 without ZeRO: the weights are Adam's masters
    assert states(2, FP32) == (4 * P, 4 * P / 8 + REDUCE_BUCKET * 4, 12 * P / 8)


def test_zero_2_and_3_match_deepspeeds_estimators() -> None:
    from megageo.train.engine import use_cpu_accelerator

    use_cpu_accelerator()
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    _, zero2 = estimate_zero2_model_states_mem_needs(P, num_gpus_per_node=8, cpu_offload=False)
    assert sum(states(2)) - REDUCE_BUCKET * 2 == zero2  # 2Ψ + 18Ψ/N; the estimator leaves out the bucket
    _, zero3, _ = estimate_zero3_model_states_mem_needs(P, LARGEST, num_gpus_per_node=8, cpu_offload=False)
    assert sum(states(3)) == zero3  # 4·L_max + 18Ψ/N


def test_stage_params_split_by_tp_except_replicated() -> None:
    job = SimpleNamespace(params={"input": 100, "backbone": 1000, "head": 50}, num_layers=4,
                          replicated={"input": 10, "backbone": 100, "head": 0})
    layout = Layout(2, 1, 2, 1, 0, False)
    assert stage_params(job, layout, 0) == 0.5 * ((1000 - 100) / 2 + 100) + (100 - 10) / 2 + 10  # 330
    assert stage_params(job, layout, 1) == 0.5 * ((1000 - 100) / 2 + 100) + 50 / 2  # 300


def test_term_bytes_follow_their_split() -> None:
    frames, batch, tp = 100, 2, 4
    assert Term("heads", 10, "tp").bytes(frames, batch, tp, False, 2) == 10 * 200 * 2 / 4
    assert Term("stream", 10, "sp").bytes(frames, batch, tp, False, 2) == 10 * 200 * 2
    assert Term("stream", 10, "sp").bytes(frames, batch, tp, True, 2) == 10 * 200 * 2 / 4
    assert Term("gathered", 10, "full").bytes(frames, batch, tp, True, 2) == 10 * 200 * 2
    assert Term("rope", 10, "position", True).bytes(frames, batch, tp, True, 2) == 10 * 100 * 4
    assert Term("copy", 10, "tp", batched=True).bytes(frames, 1, tp, False, 2) == 0
    assert Term("padding", 10, "tp", per_sample=True).bytes(frames, batch, tp, False, 2) == 10 * 2 * 2 / 4


def test_swiglu_keeps_its_norm_and_four_widths() -> None:
    from megageo.config import ModelConfig

    terms = mlp_terms(ModelConfig(hidden_size=32))  # SwiGLU width 256 (fla's rule rounds 85 up to 256)
    assert sum(term.values for term in terms) == (32 + 1 + 32 + 32) + 2 * 256 + 256 + 256


def test_layout_enumeration_of_a_small_world() -> None:
    """4 GPUs in one node, 8 frames, 2 layers: (TP, CP, PP) ∈ TP1: (1,1) (1,2) (2,1) (2,2) (4,1); TP2: (1,1) (1,2)
    (2,1); TP4: (1,1). ZeRO 0-3 without PP, 0-1 with; AC on/off; SP on/off where TP > 1: 32 + 40 + 16 layouts."""
    layouts = candidates(4, 4, 8, 2)
    assert len(layouts) == 88
    assert len(set(layouts)) == 88 and all(layout.world == 4 for layout in layouts)
    assert not [layout for layout in layouts if layout.pp > 1 and layout.zero > 1]
    assert {layout.cp for layout in candidates(4, 4, 3, 2)} == {1}  # 3 frames split into no CP blocks


def test_context_parallel_exchange_by_hand() -> None:
    import megageo.model.mixers  # noqa: F401  (registers the mixers)
    from megageo.config import MixerConfig, ModelConfig

    def exchange(mixer: str, cp: int, positions: int = 1024, frame_causal: bool = False, **settings) -> float:
        model = ModelConfig(mixer=MixerConfig.registry[mixer](num_heads=4, **settings), hidden_size=32,
                            tokens="patch" if frame_causal else "frame", frame_causal=frame_causal)
        return cp_exchange_bytes(SimpleNamespace(model=model, micro_batch=1, positions=positions),
                                 Layout(1, cp, 1, 1, 0, False), 2)

    # GLA: 4 heads, K = 32·0.5/4 = 4, V = 8, diagonal transition: cp·H·K·(V + 1) fp32 values, no conv
    assert exchange("gla", 4) == 4 * 4 * 4 * (8 + 1) * 4
    # Gated DeltaNet: K = V = 8, K×K transition, plus the conv halo of 3 frames × 96 channels per rank (bf16)
    assert exchange("gated_deltanet", 2, head_dim=8) == 2 * 4 * 8 * (8 + 8) * 4 + 2 * 3 * 96 * 2
    # Transformer: keys and values of the whole sequence
    assert exchange("transformer", 2, head_dim=8) == 2 * 1024 * 4 * 8 * 2
    assert exchange("transformer", 1, head_dim=8) == 0
    # Frame-causal GLA passes its state through the generic path: a K×K transition, cp·H·K·(V + K)
    assert exchange("gla", 4, frame_causal=True) == 4 * 4 * 4 * (8 + 4) * 4
    # Global linear attention: one all-reduce of its [K × V] state per head, whatever the CP degree
    assert exchange("global_linear", 4, head_dim=8) == exchange("global_linear", 2, head_dim=8) == 4 * 8 * 8 * 4


@pytest.mark.parametrize("ranks, all_reduce, factor", [(1, True, 0.0), (4, True, 1.5), (4, False, 0.75)])
def test_ring_bus_bytes(ranks: int, all_reduce: bool, factor: float) -> None:
    assert ring(ranks, all_reduce) == factor


def test_tensor_parallel_volume_by_hand() -> None:
    """Tiny GLA, 1024 frames, TP=2, global batch 2 of micro-batch 1: 2 micro-batches × 2 layers × 2 sub-layers ×
    (forward + backward) × ring 2·(2−1)/2 × [1024 × 32] bf16 activations."""
    from megageo.plan.cost import cost
    from megageo.plan.device import INTERCONNECTS
    from megageo.plan.layouts import load_job

    job, _ = load_job("configs/tiny/gla.yaml", ["model.hidden_size=32", "train.global_batch_size=2"], 1024,
                      (1, 8, 16), 1)
    result = cost(job, Layout(2, 1, 1, 1, 0, False), BF16, INTERCONNECTS["polaris"], 4)
    assert result.volume["tp"] == 2 * 2 * 2 * 2 * 1.0 * 1024 * 32 * 2
    assert result.volume["cp"] == result.volume["pp"] == result.volume["dp"] == 0
    assert result.communication_s["tp"] == result.volume["tp"] / 150e9
