"""Every launcher in launch/ starts a 2-rank (DP=2) run of the tiny config that completes with a checkpoint, and so
does the deepspeed launcher called bare, as DeepSpeed users do (it appends --local_rank=N to every rank).

The Polaris job scripts run outside PBS with PBS_NODEFILE listing localhost. The deepspeed hostfile launch
goes through the launcher's real ssh path, against an sshd started on loopback with a throwaway key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from megageo.parallel.launch_env import free_port
from tiny_run import build_tiny_store, tiny_overrides

REPO = Path(__file__).resolve().parents[2]
STEPS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


# Rendezvous and MPI/PMIx variables a developer's shell or an earlier job step may hold. torch's RANK/WORLD_SIZE win
# over the MPI launchers' variables, so a launcher started under them gives worlds of one: each launcher here starts
# from a clean environment, as a login shell would (test_train_cli checks megageo train leaves none behind).
INHERITED_RUNTIME = ("OMPI_", "PMIX_", "PMI_", "PRTE_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR")


def launch_env(**extra: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(INHERITED_RUNTIME)}
    return {
        **clean, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(free_port()),
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", **extra,
    }


def train_arguments(store: Path, out_dir: Path) -> list[str]:
    overrides = tiny_overrides(store, out_dir, train__steps=STEPS)
    return [f"--set={item}" for item in overrides]


def assert_completed_on_two_ranks(out_dir: Path, output: str) -> None:
    assert (out_dir / "checkpoints" / "latest").read_text() == f"step{STEPS:08d}", output
    metadata = json.loads((out_dir / "checkpoints" / f"step{STEPS:08d}" / "megageo.json").read_text())
    assert metadata["layout"] == {"tp": 1, "cp": 1, "pp": 1, "dp": 2, "zero_stage": 0}
    steps = [json.loads(line)["step"] for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))


def assert_local_rank_was_appended(output: str) -> None:
    """The deepspeed launcher logs each rank's command line; both carry the --local_rank=N it appended."""
    assert "'--local_rank=0'" in output and "'--local_rank=1'" in output, output[-4000:]


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
@pytest.mark.parametrize("script", ["torchrun.sh", "deepspeed.sh", "mpirun.sh"])
def test_single_node_launcher(store, tmp_path, script: str) -> None:
    output = run(["bash", str(REPO / "launch" / script), "2", *train_arguments(store, tmp_path)], launch_env())
    if script == "deepspeed.sh":  # `deepspeed --module megageo train ...`, without --no_local_rank
        assert_local_rank_was_appended(output)
    assert_completed_on_two_ranks(tmp_path, output)


@pytest.mark.slow
def test_bare_deepspeed_launcher_on_the_console_script(store, tmp_path) -> None:
    """`deepspeed --num_gpus 2 $(which megageo) train ...` as DeepSpeed users type it: each rank's command line
    carries the launcher's --local_rank=N (launch/deepspeed.sh covers `--module megageo` the same way)."""
    env = launch_env()
    script = shutil.which("megageo", path=env["PATH"])
    assert script is not None, "the megageo console script is not on PATH (make test puts the venv's bin first)"
    output = run(["deepspeed", "--num_gpus", "2", "--master_port", env["MASTER_PORT"], script, "train",
                  *train_arguments(store, tmp_path)], env)
    assert_local_rank_was_appended(output)
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


@pytest.mark.slow
def test_polaris_da_twin_job_outside_pbs(tmp_path) -> None:
    """The scale job at toy size: it writes its own store of two runs, trains the prior on two ranks, and runs the
    twin on the result; resubmitted, it keeps the store and the report and resumes the finished prior instead of
    starting over."""
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    tiny_prior = {"train.steps": STEPS, "train.save_every": STEPS, "train.eval_every": 0, "data.t_in": 2,
                  "train.global_batch_size": 2, "train.micro_batch_size": 1, "model.hidden_size": 16,
                  "model.num_layers": 1, "model.mixer.num_heads": 2, "model.mixer.head_dim": 8}
    env = launch_env(PBS_NODEFILE=str(nodefile), NRANKS_PER_NODE="2", NDEPTH="1", DA_DIR=str(tmp_path / "da"),
                     RUNS="2", DAYS="4", CONFIG=str(REPO / "configs" / "tiny" / "diffusion.yaml"),
                     MEGAGEO_ARGS=" ".join(f"--set={key}={value}" for key, value in tiny_prior.items()),
                     TWIN_ARGS="--cycles 1 --seeds 1 --members 2 --burn-in 0 --filter-members 4 --tuning-cycles 1 "
                               "--set diffusion.steps=2 --set diffusion.corrections=0")
    output = run(["bash", str(REPO / "launch" / "polaris" / "da_twin.pbs")], env)
    prior = tmp_path / "da" / "prior" / "checkpoints"
    metadata = json.loads((prior / f"step{STEPS:08d}" / "megageo.json").read_text())
    assert metadata["layout"] == {"tp": 1, "cp": 1, "pp": 1, "dp": 2, "zero_stage": 0}
    report = json.loads((tmp_path / "da" / "twin" / "twin.json").read_text())
    assert list(report["methods"]) == ["generative", "letkf", "enkf", "oi", "window_oi", "free", "prior",
                                       "climatology"], output
    kept = (tmp_path / "da" / "runs.h5", tmp_path / "da" / "twin" / "twin.json")
    written = {path: path.stat().st_mtime_ns for path in kept}
    rerun = run(["bash", str(REPO / "launch" / "polaris" / "da_twin.pbs")], env)
    assert {path: path.stat().st_mtime_ns for path in written} == written
    assert "hgt.1979.nc" not in rerun and (prior / "latest").read_text() == f"step{STEPS:08d}", rerun[-4000:]


@pytest.fixture
def loopback_sshd(tmp_path) -> Iterator[Path]:
    """An sshd on 127.0.0.1 accepting a throwaway key, and an `ssh` on PATH that uses it (pdsh and DeepSpeed's
    own ssh checks both call `ssh`). Yields the directory to put first on PATH."""
    missing = [tool for tool in ("/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/pdsh") if not Path(tool).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install openssh-server pdsh)")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    port = free_port()
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\n"
        f"PidFile {keys / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin yes\n"
    )
    (keys / "ssh_config").write_text(
        f"Host *\n  Port {port}\n  IdentityFile {keys / 'client_key'}\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {keys / "ssh_config"} "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(keys / "sshd_config")],
                            stderr=subprocess.DEVNULL)
    probe = [str(bin_dir / "ssh"), "-o", "ConnectTimeout=2", "127.0.0.1", "true"]
    for _ in range(50):  # wait until sshd listens
        if subprocess.run(probe, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        sshd.kill()
        pytest.skip("the loopback sshd did not accept the throwaway key")
    yield bin_dir
    sshd.terminate()
    sshd.wait()


@pytest.mark.slow
def test_deepspeed_hostfile_launch_over_ssh(store, tmp_path, loopback_sshd) -> None:
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("localhost slots=1\n127.0.0.1 slots=1\n")  # two "hosts", one rank each
    env = launch_env(HOSTFILE=str(hostfile), MASTER_ADDR="127.0.0.1",
                     PATH=f"{loopback_sshd}:{os.environ['PATH']}")
    output = run(["bash", str(REPO / "launch" / "deepspeed.sh"), "1", *train_arguments(store, tmp_path / "run")], env)
    assert "pdsh" in output
    assert_completed_on_two_ranks(tmp_path / "run", output)
