"""Consolidation: bit-equal to DeepSpeed's own zero_to_fp32 under ZeRO-3, and a TP=2 x PP=2 run's release
evaluates to the validation loss the sharded engine reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runs import train
from multiprocess import run_ranks


def test_zero3_release_equals_zero_to_fp32_bit_for_bit(zero3_run, tmp_path) -> None:
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors import safe_open

    from megageo.cli import main

    out = tmp_path / "release.safetensors"
    assert main(["convert", "consolidate", str(zero3_run / "checkpoints"), str(out)]) == 0
    reference = get_fp32_state_dict_from_zero_checkpoint(str(zero3_run / "checkpoints"))
    with safe_open(str(out), framework="pt") as f:
        assert sorted(f.keys()) == sorted(reference)
        for name in reference:
            assert torch.equal(f.get_tensor(name), reference[name]), name
        metadata = f.metadata()
    assert metadata["step"] == "3" and metadata["dtype"] == "fp32"
    assert json.loads(metadata["source_layout"]) == {"tp": 1, "cp": 1, "pp": 1, "dp": 2, "zero_stage": 3}
    assert json.loads(metadata["frame_shape"]) == [1, 8, 16]
    recorded = json.loads((zero3_run / "checkpoints" / "step00000003" / "megageo.json").read_text())
    assert json.loads(metadata["stats"]) == recorded["normalization"]
    assert json.loads(metadata["config"]) == recorded["config"]


def test_release_file_and_checkpoint_folder_load_the_same(zero3_run, tmp_path) -> None:
    from megageo.convert.release import load_release, save_release

    from_folder = load_release(zero3_run)
    from_file = load_release(save_release(from_folder, tmp_path / "release.safetensors", dtype="bf16"))
    assert from_file.step == from_folder.step == 3
    assert from_file.config == from_folder.config and from_file.stats == from_folder.stats
    for name, tensor in from_folder.state_dict.items():
        assert from_file.state_dict[name].dtype == torch.bfloat16
        assert torch.equal(from_file.state_dict[name], tensor.to(torch.bfloat16)), name


def _release_val_loss(run_dir: Path) -> float:
    """The validation loss of the consolidated model on one process, over the batches `train` evaluates."""
    from megageo.convert.release import build_model, load_release
    from megageo.data.dataset import WindowDataset
    from megageo.model.forecaster import forecast_loss
    from megageo.train.data import Sharding, validation_batches
    from megageo.train.objective import loss_weights

    release = load_release(run_dir)
    model = build_model(release)
    data, train_config = release.config.data, release.config.train
    val_set = WindowDataset(data.store, "val", data.t_in, data.t_out, data.stride)
    sharding = Sharding(train_config.global_batch_size, train_config.micro_batch_size, 0, 1)
    batches = validation_batches(val_set, sharding, train_config.eval_samples)
    weights = loss_weights(release.config, val_set.store.lat)
    with torch.no_grad():
        losses = [forecast_loss(model(x), y, weights) for x, y in batches]
    return float(torch.stack(losses).mean())


@pytest.mark.slow
def test_tp2_pp2_release_evaluates_to_the_sharded_validation_loss(store, tmp_path) -> None:
    from megageo.train.metrics_log import read_metrics

    train(4, store, tmp_path, parallel__tensor_parallel=2, parallel__pipeline_parallel=2, parallel__zero_stage=1,
          train__steps=3, train__eval_every=3, train__eval_samples=8)
    (sharded,) = [record["val_loss"] for record in read_metrics(tmp_path) if "val_loss" in record]
    (consolidated,) = run_ranks(_release_val_loss, 1, tmp_path)
    assert abs(consolidated - sharded) <= 1e-5 * sharded, (consolidated, sharded)
