"""Every launcher in launch/ starts a 2-rank (DP=2) run of the tiny config that completes with a checkpoint.

The Polaris job scripts run outside PBS with PBS_NODEFILE listing localhost. The deepspeed hostfile launch
goes through the launcher's real ssh path, against an sshd started on loopback with a throwaway key.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from multiprocess import free_port
from tiny_run import build_tiny_store, tiny_overrides

REPO = Path(__file__).resolve().parents[2]
STEPS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


def launch_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(free_port()),
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", **extra,
    }


def train_arguments(store: Path, out_dir: Path) -> list[str]:
    overrides = tiny_overrides(store, out_dir, train__steps=STEPS)
    return [f"--set={item}" for item in overrides]


def assert_completed_on_two_ranks(out_dir: Path, output: str) -> None:
    assert (out_dir / "checkpoints" / "latest").read_text() == f"step{STEPS:08d}", output
    metadata = json.loads((out_dir / "checkpoints" / f"step{STEPS:08d}" / "megageo.json").read_text())
    assert metadata["layout"] == {"tp": 1, "pp": 1, "dp": 2, "zero_stage": 0}
    steps = [json.loads(line)["step"] for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
@pytest.mark.parametrize("script", ["torchrun.sh", "deepspeed.sh", "mpirun.sh"])
def test_single_node_launcher(store, tmp_path, script: str) -> None:
    output = run(["bash", str(REPO / "launch" / script), "2", *train_arguments(store, tmp_path)], launch_env())
    assert_completed_on_two_ranks(tmp_path, output)


@pytest.mark.slow
def test_polaris_train_job_outside_pbs(store, tmp_path) -> None:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    arguments = " ".join(train_arguments(store, tmp_path / "run"))
    env = launch_env(PBS_NODEFILE=str(nodefile), NRANKS_PER_NODE="2", NDEPTH="1", MEGAGEO_ARGS=arguments,
                     CONFIG=str(REPO / "configs" / "tiny" / "gla.yaml"))
    output = run(["bash", str(REPO / "launch" / "polaris" / "train.pbs")], env)
    assert_completed_on_two_ranks(tmp_path / "run", output)


@pytest.mark.slow
def test_polaris_bench_job_outside_pbs(store, tmp_path) -> None:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    arguments = " ".join(train_arguments(store, tmp_path / "unused"))
    env = launch_env(PBS_NODEFILE=str(nodefile), NRANKS_PER_NODE="2", NDEPTH="1", MIXERS="gla",
                     BENCH_STEPS=str(STEPS), CONFIG_DIR=str(REPO / "configs" / "tiny"),
                     BENCH_OUT=str(tmp_path / "bench"), MEGAGEO_ARGS=arguments)
    output = run(["bash", str(REPO / "launch" / "polaris" / "bench.pbs")], env)
    records = [json.loads(line) for line in (tmp_path / "bench" / "gla-n2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1)), output[-4000:]
    assert all(r["tokens_per_s"] > 0 for r in records)
