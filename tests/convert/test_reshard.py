"""Reshard: TP=2 → TP=1 → TP=2 reproduces the original files' tensors bit for bit, and training resumed from a
TP=1 reshard continues with the per-step losses of the original TP=2 run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runs import SAVED_AT, STEPS, TP2, train

TAG = f"step{SAVED_AT:08d}"


def reshard_cli(source: Path, out: Path, tp: int) -> None:
    from megageo.cli import main

    assert main(["convert", "reshard", str(source), str(out), "--tp", str(tp)]) == 0


def saved(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_tp2_to_tp1_to_tp2_is_bit_exact(tp2_run, tmp_path) -> None:
    reshard_cli(tp2_run / "checkpoints" / TAG, tmp_path / "tp1", tp=1)
    reshard_cli(tmp_path / "tp1", tmp_path / "tp2", tp=2)
    original, round_trip = tp2_run / "checkpoints" / TAG, tmp_path / "tp2" / TAG
    assert sorted(p.name for p in round_trip.iterdir()) == sorted(p.name for p in original.iterdir())
    for rank in range(2):
        before, after = (saved(folder / f"mp_rank_{rank:02d}_model_states.pt") for folder in (original, round_trip))
        tensors = [name for name, value in before["module"].items() if isinstance(value, torch.Tensor)]
        assert len(tensors) == 25
        assert all(torch.equal(before["module"][name], after["module"][name]) for name in tensors)
        assert after["lr_scheduler"] == before["lr_scheduler"]
        assert after["global_steps"] == before["global_steps"] == SAVED_AT
        name = f"zero_pp_rank_0_mp_rank_{rank:02d}_optim_states.pt"
        before, after = (saved(folder / name)["optimizer_state_dict"] for folder in (original, round_trip))
        for group, (flat, restored) in enumerate(
            zip(before["single_partition_of_fp32_groups"], after["single_partition_of_fp32_groups"], strict=True)
        ):
            assert torch.equal(flat, restored)
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(before["base_optimizer_state"]["state"][group][key],
                                   after["base_optimizer_state"]["state"][group][key]), (group, key)
        assert after["base_optimizer_state"]["param_groups"] == before["base_optimizer_state"]["param_groups"]


@pytest.mark.slow
def test_resuming_a_tp1_reshard_continues_the_tp2_losses(store, tp2_run, tmp_path) -> None:
    reshard_cli(tp2_run / "checkpoints" / TAG, tmp_path / "tp1" / "checkpoints", tp=1)
    resharded = train(1, store, tmp_path / "tp1", resume=True, train__steps=STEPS, parallel__zero_stage=1)
    original = train(2, store, tp2_run, resume=True, train__steps=STEPS, **TP2)
    assert len(resharded) == len(original) == STEPS - SAVED_AT
    worst = max(abs(a - b) / abs(b) for a, b in zip(resharded, original, strict=True))
    assert worst <= 1e-5, (resharded, original)
