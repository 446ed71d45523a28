"""Reshard between layouts that combine data parallelism with TP or PP: a TP=2 × DP=2 ZeRO-1 checkpoint becomes
a PP=2 × DP=2 ZeRO-1 one and a DP=2 ZeRO-3 one. Each keeps every weight bit for bit (their releases are equal) and
training resumed from each continues with the per-step losses of the original layout resumed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from runs import SAVED_AT, STEPS, train

TP2_DP2 = dict(parallel__tensor_parallel=2, parallel__zero_stage=1)
TARGETS = {
    "pp2_dp2_zero1": (4, ["--tp", "1", "--pp", "2", "--dp", "2"],
                      dict(parallel__pipeline_parallel=2, parallel__zero_stage=1)),
    "dp2_zero3": (2, ["--tp", "1", "--dp", "2", "--zero-stage", "3"], dict(parallel__zero_stage=3)),
}


@pytest.fixture(scope="module")
def tp2_dp2(store, tmp_path_factory) -> tuple[Path, list[float]]:
    """The TP=2 × DP=2 run stopped at step 4 of 8, and the losses of steps 5–8 resumed on its own layout (a copy
    resumes, so the checkpoint at step 4 stays the one to reshard)."""
    out = tmp_path_factory.mktemp("tp2_dp2")
    train(4, store, out, stop_at=SAVED_AT, train__steps=STEPS, **TP2_DP2)
    resumed = tmp_path_factory.mktemp("tp2_dp2_resumed") / "run"
    shutil.copytree(out, resumed)
    return out, train(4, store, resumed, resume=True, train__steps=STEPS, **TP2_DP2)


def consolidated(checkpoints: Path, out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from megageo.cli import main

    assert main(["convert", "consolidate", str(checkpoints), str(out)]) == 0
    return load_file(out)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_reshard_from_tp2_dp2_keeps_weights_and_losses(store, tp2_dp2, tmp_path, target: str) -> None:
    from megageo.cli import main

    source, original = tp2_dp2
    ranks, flags, settings = TARGETS[target]
    new_run = tmp_path / "run"
    assert main(["convert", "reshard", str(source / "checkpoints"), str(new_run / "checkpoints"), *flags]) == 0
    before = consolidated(source / "checkpoints", tmp_path / "before.safetensors")
    after = consolidated(new_run / "checkpoints", tmp_path / "after.safetensors")
    assert sorted(after) == sorted(before) and all(torch.equal(after[n], before[n]) for n in before)

    resharded = train(ranks, store, new_run, resume=True, train__steps=STEPS, **settings)
    assert len(resharded) == len(original) == STEPS - SAVED_AT
    worst = max(abs(a - b) / abs(b) for a, b in zip(resharded, original, strict=True))
    assert worst <= 1e-5, (resharded, original)
