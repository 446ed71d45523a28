"""`megageo train` from the command line: up-front config errors and what a run directory holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiprocess import run_ranks
from tiny_run import build_tiny_store, tiny_overrides

from megageo.cli import main

TRAIN_KEYS = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "tflops", "peak_mem_gb", "elapsed_s"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["parallel.tensor_parallel=3"], "model.mixer.num_heads=4 is not divisible by parallel.tensor_parallel=3"),
        (["parallel.pipeline_parallel=3"], "model.num_layers=2 is fewer than parallel.pipeline_parallel=3"),
        (["parallel.pipeline_parallel=2", "parallel.zero_stage=2"],
         "parallel.zero_stage=2 cannot be combined with pipeline_parallel=2"),
        (["train.micro_batch_size=5"], "train.global_batch_size=16 is not a multiple of train.micro_batch_size=5"),
    ],
    ids=["heads-vs-tp", "layers-vs-pp", "zero2-with-pp", "batch-vs-micro"],
)
def test_config_errors_exit_2_with_one_line(capsys, overrides: list[str], message: str) -> None:
    assert main(["train", *(f"--set={item}" for item in overrides)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_batch_vs_data_parallel_is_checked_before_any_rendezvous(capsys, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "9")
    assert main(["train", "--set=train.micro_batch_size=16"]) == 2
    err = capsys.readouterr().err
    assert "train.global_batch_size=16 is not a multiple of train.micro_batch_size=16 x 2 data-parallel ranks" in err


def test_missing_store_is_a_one_line_error(capsys, tmp_path) -> None:
    assert main(["train", f"--set=data.store={tmp_path / 'absent.h5'}"]) == 2
    assert "absent.h5: no such store" in capsys.readouterr().err


def _cli(arguments: list[str]) -> int:
    return main(arguments)


def test_run_directory_holds_config_metrics_tensorboard_and_checkpoint(tmp_path) -> None:
    from megageo.config import load_config
    from megageo.train.metrics_log import read_metrics
    from megageo.train.schedule import WarmupCosine

    store = build_tiny_store(tmp_path)
    overrides = tiny_overrides(store, tmp_path / "run", train__steps=6, train__eval_every=3, train__log_every=2,
                               train__eval_samples=8)
    (code,) = run_ranks(_cli, 1, ["train", *(f"--set={item}" for item in overrides)])
    assert code == 0
    run = tmp_path / "run"
    assert load_config(run / "config.yaml").to_dict() == load_config(None, overrides).to_dict()
    records = read_metrics(run)
    train_records = [r for r in records if "split" not in r]
    val_records = [r for r in records if r.get("split") == "val"]
    assert [r["step"] for r in train_records] == [2, 4, 6] and all(set(r) == TRAIN_KEYS for r in train_records)
    schedule = WarmupCosine(lr=1e-3, min_lr=0.0, warmup_steps=2, steps=6)
    assert [r["lr"] for r in train_records] == pytest.approx([schedule.value(s - 1) for s in (2, 4, 6)], rel=1e-9)
    assert all(r["tokens_per_s"] > 0 and r["tflops"] > 0 and r["peak_mem_gb"] > 0.05 for r in train_records)
    assert [r["step"] for r in val_records] == [3, 6]
    assert all(set(r) == {"split", "step", "val_loss"} and 0.0 < r["val_loss"] < 10.0 for r in val_records)
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert (run / "checkpoints" / "latest").read_text() == "step00000006"
    assert Path(run / "checkpoints" / "step00000006" / "megageo.json").is_file()


def test_a_one_process_run_puts_the_callers_rendezvous_variables_back(tmp_path, monkeypatch) -> None:
    """A launcher started after an in-process `megageo train` inherits the caller's environment: rendezvous variables
    left behind would make its ranks worlds of one (torch's RANK/WORLD_SIZE win over the MPI launchers')."""
    import os

    rendezvous = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    for name in rendezvous:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    overrides = tiny_overrides(build_tiny_store(tmp_path), tmp_path / "run", train__steps=1)
    assert main(["train", *(f"--set={item}" for item in overrides)]) == 0
    assert {name: os.environ.get(name) for name in rendezvous} == {
        "RANK": None, "LOCAL_RANK": None, "WORLD_SIZE": None, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": None,
    }
