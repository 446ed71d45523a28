"""bf16 checkpoints: DeepSpeed keeps bf16 weights in the module and the fp32 masters elsewhere (the ZeRO optimizer's
`bf16_zero_pp_rank_*` files, or without ZeRO the optimizer's `fp32_groups`). Consolidate must release the masters
(DeepSpeed's own zero_to_fp32 is the oracle), reshard must carry them, the missing-shard check must know the bf16
names, and reshard must refuse a DeepSpeed release whose private optimizer hook it was not written for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from runs import SAVED_AT, STEPS, train

TAG = f"step{SAVED_AT:08d}"
BF16 = dict(train__precision="bf16")


@pytest.fixture(scope="module")
def bf16_zero1_run(store, tmp_path_factory) -> Path:
    """DP=2, ZeRO-1, bf16, stopped with a checkpoint after step 4 of 8."""
    out = tmp_path_factory.mktemp("bf16_zero1")
    train(2, store, out, stop_at=SAVED_AT, train__steps=STEPS, parallel__zero_stage=1, **BF16)
    return out


@pytest.fixture(scope="module")
def bf16_plain_run(store, tmp_path_factory) -> Path:
    """One process, no ZeRO, bf16, stopped with a checkpoint after step 4 of 8."""
    out = tmp_path_factory.mktemp("bf16_plain")
    train(1, store, out, stop_at=SAVED_AT, train__steps=STEPS, parallel__zero_stage=0, **BF16)
    return out


def release(checkpoints: Path, out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from megageo.cli import main

    assert main(["convert", "consolidate", str(checkpoints), str(out)]) == 0
    return load_file(out)


def test_bf16_zero1_release_is_deepspeeds_fp32_masters(bf16_zero1_run, tmp_path) -> None:
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    tag = bf16_zero1_run / "checkpoints" / TAG
    assert sorted(p.name for p in tag.glob("*optim_states.pt")) == [
        "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt", "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    released = release(bf16_zero1_run / "checkpoints", tmp_path / "release.safetensors")
    reference = get_fp32_state_dict_from_zero_checkpoint(str(bf16_zero1_run / "checkpoints"))
    assert sorted(released) == sorted(reference) and len(reference) == 25
    assert all(torch.equal(released[name], reference[name]) for name in reference)
    assert all(tensor.dtype == torch.float32 for tensor in released.values())


def test_bf16_without_zero_releases_the_masters_whose_rounding_is_the_module(bf16_plain_run, tmp_path) -> None:
    released = release(bf16_plain_run / "checkpoints", tmp_path / "release.safetensors")
    module = torch.load(bf16_plain_run / "checkpoints" / TAG / "mp_rank_00_model_states.pt",
                        map_location="cpu", weights_only=False)["module"]
    assert sorted(released) == sorted(name for name, t in module.items() if isinstance(t, torch.Tensor))
    assert all(module[name].dtype == torch.bfloat16 for name in released)
    assert all(torch.equal(tensor.to(torch.bfloat16), module[name]) for name, tensor in released.items())
    # Four Adam steps at lr 1e-3 move the masters off the bf16 grid in every tensor: they are not the module.
    assert all(not torch.equal(tensor, module[name].float()) for name, tensor in released.items())


@pytest.mark.slow
@pytest.mark.parametrize("run, target", [("bf16_zero1_run", ["--dp", "1", "--zero-stage", "0"]),
                                         ("bf16_plain_run", ["--dp", "2", "--zero-stage", "1"])])
def test_a_bf16_reshard_round_trips_the_masters(request, run: str, target: list[str], tmp_path) -> None:
    from megageo.cli import main

    source = request.getfixturevalue(run) / "checkpoints"
    assert main(["convert", "reshard", str(source), str(tmp_path / "resharded"), "--tp", "1", *target]) == 0
    before = release(source, tmp_path / "before.safetensors")
    after = release(tmp_path / "resharded", tmp_path / "after.safetensors")
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[name], before[name]) for name in before)


def test_a_missing_bf16_shard_is_named(capsys, bf16_zero1_run, tmp_path) -> None:
    from megageo.cli import main

    tag = tmp_path / TAG
    shutil.copytree(bf16_zero1_run / "checkpoints" / TAG, tag)
    (tag / "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt").unlink()
    assert main(["convert", "consolidate", str(tag), str(tmp_path / "out.safetensors")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "missing shard bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt" in error
    assert not (tmp_path / "out.safetensors").exists()


def test_reshard_refuses_a_deepspeed_it_was_not_written_for(capsys, monkeypatch, bf16_zero1_run, tmp_path) -> None:
    import deepspeed

    from megageo.cli import main

    monkeypatch.setattr(deepspeed, "__version__", "0.20.1")
    out = tmp_path / "out"
    assert main(["convert", "reshard", str(bf16_zero1_run), str(out), "--tp", "1", "--dp", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "relies on DeepSpeed 0.19.8's private DeepSpeedZeroOptimizer._lazy_init_hp_params_optimizer_state" in error
    assert "this is DeepSpeed 0.20.1" in error
    assert not out.exists()
