"""Context-parallel training reproduces one process: 5 steps from the same seed, float32, per-step losses equal to
the single-process run to 1e-5 relative — all six mixers at CP=2, and GLA (with its short conv, so the halo is
exercised) at CP=4, CP=2×TP=2 with and without SP, CP=2×PP=2 and CP=2×DP=2 under ZeRO-2. Then checkpoints: an
interrupted CP=2 run resumes exactly, a CP=2 checkpoint is refused at another layout with a pointer to reshard,
reshard CP=2 → CP=1 → CP=2 round-trips the weights and Adam state bit for bit, and one process resumed from the
CP=1 reshard continues with the CP=2 run's losses.

The token model (frame-causal GLA over 4 × 4 patches of the 8 × 16 grid: 8 tokens a frame, 96 a window) trains
like the frame model at CP=2, CP=2×TP=2+SP, CP=2×PP=2 and CP=2×DP=2 under ZeRO-2, in the same processes.

Windows are 12 frames, so CP=4 blocks (3 frames) still hold GLA's 3-frame conv halo.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from multiprocess import run_ranks
from tiny_run import MIXERS, build_tiny_store, run_training, tiny_overrides

TOLERANCE = 1e-5
STEPS, SAVED_AT = 5, 3
GLA = MIXERS["gla"]
GLA_LAYOUTS_4_RANKS = {
    "cp4": dict(parallel__context_parallel=4),
    "cp2-tp2": dict(parallel__context_parallel=2, parallel__tensor_parallel=2),
    "cp2-tp2-sp": dict(parallel__context_parallel=2, parallel__tensor_parallel=2, parallel__sequence_parallel=True),
    "cp2-pp2": dict(parallel__context_parallel=2, parallel__pipeline_parallel=2),
    "cp2-dp2-zero2": dict(parallel__context_parallel=2, parallel__zero_stage=2, train__micro_batch_size=1),
}
CP2 = dict(parallel__context_parallel=2, parallel__zero_stage=1)
TOKENS = dict(model__tokens="patch", model__patch_size=4, model__frame_causal=True)
TOKEN_LAYOUTS_4_RANKS = {
    "tokens cp2-tp2-sp": dict(parallel__context_parallel=2, parallel__tensor_parallel=2, parallel__sequence_parallel=True),
    "tokens cp2-pp2": dict(parallel__context_parallel=2, parallel__pipeline_parallel=2),
    "tokens cp2-dp2-zero2": dict(parallel__context_parallel=2, parallel__zero_stage=2, train__micro_batch_size=1),
}


def _overrides(store: Path, out: Path, mixer: str, **settings) -> list[str]:
    return tiny_overrides(store, out, data__t_in=12, train__steps=STEPS, model__mixer=MIXERS[mixer], **settings)


def _single_process(store: Path, out: Path) -> dict[str, list[float]]:
    results = {mixer: run_training(_overrides(store, out / mixer, mixer)) for mixer in MIXERS}
    results["gla tokens"] = run_training(_overrides(store, out / "tokens", "gla", **TOKENS))
    return results


def _two_ranks(store: Path, out: Path) -> dict:
    """Every mixer at CP=2; an interrupted and resumed CP=2 GLA run; a CP=2 checkpoint resumed at TP=2."""
    from megageo.errors import MegageoError

    results = {mixer: run_training(_overrides(store, out / mixer, mixer, parallel__context_parallel=2))
               for mixer in MIXERS}
    results["gla tokens"] = run_training(_overrides(store, out / "tokens", "gla", parallel__context_parallel=2, **TOKENS))
    interrupted = out / "interrupted"
    results["uninterrupted"] = run_training(_overrides(store, out / "uninterrupted", "gla", **CP2))
    results["first part"] = run_training(_overrides(store, interrupted, "gla", **CP2), stop_at=SAVED_AT)
    results["resumed"] = run_training(_overrides(store, interrupted, "gla", **CP2), resume=True)
    try:
        run_training(_overrides(store, interrupted, "gla", parallel__tensor_parallel=2), resume=True)
    except MegageoError as error:
        results["other layout"] = str(error)
    return results


def _four_ranks(store: Path, out: Path) -> dict[str, list[float]]:
    layouts = {**GLA_LAYOUTS_4_RANKS, **{name: {**settings, **TOKENS} for name, settings in TOKEN_LAYOUTS_4_RANKS.items()}}
    return {name: run_training(_overrides(store, out / name, "gla", **settings)) for name, settings in layouts.items()}


def _resume_one_process(store: Path, out: Path) -> list[float]:
    return run_training(_overrides(store, out, "gla", parallel__zero_stage=1), resume=True)


def worst_error(losses: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / abs(b) for a, b in zip(losses, reference, strict=True))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory) -> dict[str, list[float]]:
    (losses,) = run_ranks(_single_process, 1, store, tmp_path_factory.mktemp("single"))
    for mixer, curve in losses.items():
        assert len(curve) == STEPS and len(set(curve)) == STEPS, f"{mixer}: expected {STEPS} distinct losses, {curve}"
    return losses


@pytest.fixture(scope="module")
def two_rank_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cp2")


@pytest.fixture(scope="module")
def two_ranks(store, two_rank_out) -> dict:
    per_rank = run_ranks(_two_ranks, 2, store, two_rank_out)
    assert per_rank[0] == per_rank[1], "CP ranks report different losses"
    return per_rank[0]


@pytest.fixture(scope="module")
def four_ranks(store, tmp_path_factory) -> dict[str, list[float]]:
    per_rank = run_ranks(_four_ranks, 4, store, tmp_path_factory.mktemp("four"))
    assert all(rank == per_rank[0] for rank in per_rank), "ranks report different losses"
    return per_rank[0]


@pytest.mark.slow
@pytest.mark.parametrize("mixer", list(MIXERS))
def test_cp2_training_matches_one_process(two_ranks, reference, mixer: str) -> None:
    error = worst_error(two_ranks[mixer], reference[mixer])
    assert error <= TOLERANCE, f"{mixer} at CP=2: per-step losses differ by {error:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(GLA_LAYOUTS_4_RANKS))
def test_gla_context_parallel_layouts_match_one_process(four_ranks, reference, layout: str) -> None:
    error = worst_error(four_ranks[layout], reference["gla"])
    assert error <= TOLERANCE, f"GLA at {layout}: per-step losses differ by {error:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tokens cp2", *TOKEN_LAYOUTS_4_RANKS])
def test_token_model_layouts_match_one_process(two_ranks, four_ranks, reference, layout: str) -> None:
    losses = two_ranks["gla tokens"] if layout == "tokens cp2" else four_ranks[layout]
    error = worst_error(losses, reference["gla tokens"])
    assert error <= TOLERANCE, f"token GLA at {layout}: per-step losses differ by {error:.2e}"


@pytest.mark.slow
def test_cp2_resume_is_exact(two_ranks) -> None:
    assert two_ranks["first part"] + two_ranks["resumed"] == two_ranks["uninterrupted"]


@pytest.mark.slow
def test_cp2_checkpoint_at_another_layout_points_to_reshard(two_ranks) -> None:
    message = two_ranks["other layout"]
    assert "cp=2" in message and "tp=2, cp=1" in message
    assert "megageo convert reshard" in message and "--cp 1" in message


@pytest.mark.slow
def test_consolidate_and_inspect_read_a_cp_checkpoint(two_ranks, two_rank_out, tmp_path, capsys) -> None:
    """A CP=2, ZeRO-1 checkpoint: DeepSpeed numbered its optimizer shards over the DP×CP group."""
    from safetensors.torch import load_file

    from megageo.cli import main

    original = two_rank_out / "interrupted" / "checkpoints" / f"step{SAVED_AT:08d}"
    assert sorted(p.name for p in original.glob("*optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    assert main(["convert", "inspect", str(original)]) == 0
    assert "cp=2" in capsys.readouterr().out
    assert main(["convert", "consolidate", str(original), str(tmp_path / "release.safetensors")]) == 0
    weights = load_file(tmp_path / "release.safetensors")
    assert weights["input.proj.weight"].shape == (32, 8 * 16) and len(weights) > 10


@pytest.mark.slow
def test_reshard_cp2_to_cp1_to_cp2_round_trips(two_ranks, two_rank_out, store, tmp_path) -> None:
    from megageo.cli import main
    from megageo.convert.full_state import consolidate
    from megageo.convert.layout import ModelLayout
    from megageo.convert.source import open_checkpoint

    original = two_rank_out / "interrupted" / "checkpoints" / f"step{SAVED_AT:08d}"
    cp1 = tmp_path / "cp1" / "checkpoints"
    assert main(["convert", "reshard", str(original), str(cp1), "--tp", "1", "--cp", "1"]) == 0
    assert main(["convert", "reshard", str(cp1), str(tmp_path / "cp2"), "--tp", "1", "--cp", "2"]) == 0
    states = []
    for folder in (original, cp1, tmp_path / "cp2"):
        source = open_checkpoint(folder)
        states.append(consolidate(source, ModelLayout(source.config, source.frame_shape), with_optimizer=True))
        assert source.step == SAVED_AT
    assert [open_checkpoint(f).layout.cp for f in (original, cp1, tmp_path / "cp2")] == [2, 1, 2]
    before = states[0]
    for after in states[1:]:
        assert before.weights.keys() == after.weights.keys() and len(before.weights) > 10
        assert all(torch.equal(before.weights[name], after.weights[name]) for name in before.weights)
        for key in before.moments:
            assert all(torch.equal(before.moments[key][n], after.moments[key][n]) for n in before.weights), key
        assert after.adam_step == before.adam_step == SAVED_AT
    (resumed,) = run_ranks(_resume_one_process, 1, store, tmp_path / "cp1")
    error = worst_error(resumed, two_ranks["resumed"])
    assert len(resumed) == STEPS - SAVED_AT and error <= TOLERANCE, (resumed, two_ranks["resumed"])
