"""Checkpoints: exact resume, keep-last-K, interrupted saves, SIGTERM, metadata, and refused layout changes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from megageo.errors import MegageoError
from multiprocess import run_ranks
from tiny_run import build_tiny_store, run_training, tiny_overrides


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


def tags(checkpoints: Path) -> list[str]:
    return sorted(path.name for path in checkpoints.iterdir() if path.is_dir())


def _split_and_whole(store: Path, out: Path, settings: dict) -> tuple[list[float], list[float], list[float]]:
    """20 steps in one go, and 10 steps + resume + 10 steps, saving every 4 steps and keeping the last 2."""
    settings = dict(train__steps=20, train__warmup_steps=4, train__save_every=4, train__keep_last=2, **settings)
    whole = run_training(tiny_overrides(store, out / "whole", **settings))
    first = run_training(tiny_overrides(store, out / "split", **settings), stop_at=10)
    second = run_training(tiny_overrides(store, out / "split", **settings), resume=True)
    return whole, first, second


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ranks", "settings"), [(1, {}), (2, dict(parallel__zero_stage=2))], ids=["single", "dp2-zero2"]
)
def test_resume_is_exact(store, tmp_path, ranks: int, settings: dict) -> None:
    whole, first, second = run_ranks(_split_and_whole, ranks, store, tmp_path, settings)[0]
    assert len(first) == 10 and len(second) == 10
    assert first + second == whole
    checkpoints = tmp_path / "split" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "step00000020"
    assert tags(checkpoints) == ["step00000016", "step00000020"]


def _failing_save(store: Path, out: Path) -> tuple[str, list[float], list[float]]:
    """Train 8 steps saving every 3; the save at step 6 dies half-way; then resume."""
    import deepspeed

    overrides = tiny_overrides(store, out / "run", train__steps=8, train__save_every=3, train__keep_last=3)
    save = deepspeed.DeepSpeedEngine.save_checkpoint

    def dies_at_step_6(engine, save_dir, tag=None, **kwargs):
        if tag == "step00000006":
            (Path(save_dir) / tag).mkdir(parents=True)
            (Path(save_dir) / tag / "mp_rank_00_model_states.pt").write_bytes(b"half")
            raise OSError("disk quota exceeded")
        return save(engine, save_dir, tag=tag, **kwargs)

    deepspeed.DeepSpeedEngine.save_checkpoint = dies_at_step_6
    try:
        run_training(overrides)
    except MegageoError as error:
        assert re.fullmatch(r".+/run/checkpoints/step00000006 could not be written \(this rank: disk quota exceeded; "
                            r"[\d.]+ GB free there\); 'latest' still names step00000003", str(error)), error
    else:
        raise AssertionError("the failed save did not stop training")
    finally:
        deepspeed.DeepSpeedEngine.save_checkpoint = save
    latest_after_failure = (out / "run" / "checkpoints" / "latest").read_text()
    resumed = run_training(overrides, resume=True)
    whole = run_training(tiny_overrides(store, out / "whole", train__steps=8, train__save_every=3))
    return latest_after_failure, resumed, whole


@pytest.mark.slow
def test_interrupted_save_keeps_the_previous_checkpoint(store, tmp_path) -> None:
    latest, resumed, whole = run_ranks(_failing_save, 1, store, tmp_path)[0]
    assert latest == "step00000003"
    assert resumed == whole[3:]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert tags(checkpoints) == ["step00000003", "step00000006", "step00000008"]
    assert (checkpoints / "step00000006" / "mp_rank_00_model_states.pt").stat().st_size > 1000


def _train_then_resume_as(store: Path, out: Path, stage: str) -> None:
    overrides = tiny_overrides(store, out, train__steps=2)
    if stage == "first":
        run_training(overrides)
    else:
        run_training(overrides + ["parallel.tensor_parallel=2"], resume=True)


@pytest.mark.slow
def test_resume_with_another_layout_is_refused(store, tmp_path) -> None:
    run_ranks(_train_then_resume_as, 1, store, tmp_path, "first")
    message = (r"written with layout tp=1, cp=1, pp=1, dp=1, zero_stage=0, this run has tp=2, cp=1, pp=1, dp=1, "
               r"zero_stage=0; resume with the same layout, or convert the checkpoint first: megageo convert reshard")
    with pytest.raises(RuntimeError, match=message):
        run_ranks(_train_then_resume_as, 2, store, tmp_path, "again")


def test_checkpoint_records_layout_config_step_and_normalisation(store, tmp_path) -> None:
    from megageo.data.store import Store

    run_ranks(_train_then_resume_as, 1, store, tmp_path, "first")
    metadata = json.loads((tmp_path / "checkpoints" / "step00000002" / "megageo.json").read_text())
    assert metadata["step"] == 2
    assert metadata["layout"] == {"tp": 1, "cp": 1, "pp": 1, "dp": 1, "zero_stage": 0}
    assert metadata["config"]["model"]["hidden_size"] == 32
    assert metadata["config"]["model"]["mixer"]["type"] == "gla"
    reference = Store(store)
    assert metadata["normalization"]["levels"] == [500.0]
    np.testing.assert_allclose(metadata["normalization"]["mean"], reference.mean, rtol=1e-6)
    np.testing.assert_allclose(metadata["normalization"]["std"], reference.std, rtol=1e-6)


def test_fresh_run_into_a_checkpointed_directory_is_refused(store, tmp_path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("step00000002")
    with pytest.raises(MegageoError, match="already holds checkpoints: pass --resume"):
        run_training(tiny_overrides(store, tmp_path))


def _megageo_train(overrides: list[str], *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "megageo", "train", *(f"--set={item}" for item in overrides), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [record["step"] for record in map(json.loads, lines) if "loss" in record]


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(store, tmp_path) -> None:
    overrides = tiny_overrides(store, tmp_path, train__steps=100_000, train__warmup_steps=10)
    process = _megageo_train(overrides)
    while len(_logged_steps(tmp_path)) < 2 and process.poll() is None:
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    last = _logged_steps(tmp_path)[-1]
    assert f"SIGTERM: stopped after step {last} with a checkpoint" in output
    assert (tmp_path / "checkpoints" / "latest").read_text() == f"step{last:08d}"

    resumed = _megageo_train(overrides, "--resume", f"--stop-at={last + 2}")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert _logged_steps(tmp_path)[-2:] == [last + 1, last + 2]
