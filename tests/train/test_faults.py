"""Faults during multi-rank training, launched with torchrun as users launch it.

- A rank killed with SIGKILL in the middle of a step or of a checkpoint save (2 ranks: DP=2; 4 ranks: TP=2 × DP=2;
  ZeRO-1, so every rank writes checkpoint files): the job ends with a non-zero exit within a bounded time,
  `latest` names the last complete checkpoint, and `--resume` continues with the per-step losses of an
  uninterrupted run, exactly.
- SIGTERM to every rank of a 2-rank run, at different moments: the ranks agree on one step, save once, exit 0.
- A full disk during a save (a file-size limit the kernel enforces): one error line, `latest` and the previous
  checkpoint untouched.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from megageo.parallel.launch_env import free_port
from tiny_run import build_tiny_store, tiny_overrides

HERE = Path(__file__).resolve().parent
STEPS, SAVE_EVERY = 8, 2
LAYOUTS = {2: dict(parallel__zero_stage=1), 4: dict(parallel__zero_stage=1, parallel__tensor_parallel=2)}
EXIT_BOUND_S = 90
"""torchrun stops the surviving ranks with SIGTERM and, after its 30 s grace period, SIGKILL."""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def injector(tmp_path_factory) -> Path:
    """A folder whose `sitecustomize` is `faults.py`: every Python process of the job loads it at start-up."""
    folder = tmp_path_factory.mktemp("injector")
    (folder / "sitecustomize.py").symlink_to(HERE / "faults.py")
    return folder


def torchrun(ranks: int, store: Path, out: Path, *extra: str, env: dict[str, str] | None = None,
             preexec: Callable[[], None] | None = None, **settings) -> subprocess.Popen:
    settings = {"train__steps": STEPS, "train__save_every": SAVE_EVERY, "train__keep_last": 10, **settings}
    overrides = tiny_overrides(store, out, **settings)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
               "--master_port", str(free_port()), "-m", "megageo", "train",
               *(f"--set={item}" for item in overrides), *extra]
    return subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def losses(run: Path) -> dict[int, float]:
    """Per-step losses from metrics.jsonl; a resumed run's records of a step replace the killed run's."""
    records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return {record["step"]: record["loss"] for record in records if "loss" in record}


@pytest.fixture(scope="module")
def uninterrupted(store, tmp_path_factory) -> dict[int, dict[int, float]]:
    runs = {}
    for ranks, settings in LAYOUTS.items():
        out = tmp_path_factory.mktemp(f"whole{ranks}")
        code, output = finish(torchrun(ranks, store, out, **settings))
        assert code == 0, output[-3000:]
        runs[ranks] = losses(out)
    return runs


CASES = [(2, "step", 5, 1), (2, "save", 4, 0), (4, "step", 5, 3), (4, "save", 4, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("ranks, where, step, rank", CASES, ids=[f"{r}ranks-{w}" for r, w, _, _ in CASES])
def test_a_killed_rank_ends_the_job_and_resume_continues_exactly(
    store, injector, uninterrupted, tmp_path, ranks: int, where: str, step: int, rank: int,
) -> None:
    out, mark = tmp_path / "run", tmp_path / "killed_at"
    fault = {"MEGAGEO_FAULT": f"{where}:{step}:{rank}", "MEGAGEO_FAULT_MARK": str(mark),
             "PYTHONPATH": os.pathsep.join([str(injector), os.environ.get("PYTHONPATH", "")])}
    code, output = finish(torchrun(ranks, store, out, env=fault, **LAYOUTS[ranks]))
    ended = time.time()
    assert mark.is_file(), output[-3000:]
    assert code != 0, output[-3000:]
    assert ended - float(mark.read_text()) < EXIT_BOUND_S
    last_complete = step - SAVE_EVERY if where == "save" else step - 1
    assert (out / "checkpoints" / "latest").read_text() == f"step{last_complete:08d}"

    code, output = finish(torchrun(ranks, store, out, "--resume", **LAYOUTS[ranks]))
    assert code == 0, output[-3000:]
    assert losses(out) == uninterrupted[ranks]


def worker_pids(parent: int) -> list[int]:
    """The processes torchrun started (its children), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


@pytest.mark.slow
def test_sigterm_to_every_rank_saves_once_and_exits_0(store, tmp_path) -> None:
    process = torchrun(2, store, tmp_path, train__steps=100_000, train__save_every=0, train__warmup_steps=10)
    while len(losses(tmp_path) if (tmp_path / "metrics.jsonl").is_file() else {}) < 2:
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.5)
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    for pid in workers:  # one after the other, so the ranks see the signal at different steps
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
    code, output = finish(process)
    assert code == 0, output[-3000:]
    (line,) = [line for line in output.splitlines() if line.startswith("SIGTERM: stopped after step")]
    last = max(losses(tmp_path))
    assert line == f"SIGTERM: stopped after step {last} with a checkpoint"
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == [f"step{last:08d}"]
    assert (checkpoints / "latest").read_text() == f"step{last:08d}"


def full_disk(limit_bytes: int) -> None:
    """In the launched job: the kernel refuses any file growing past `limit_bytes` (EFBIG, as a full disk refuses
    with ENOSPC), for torchrun and every rank it starts (limits and ignored signals survive fork and exec)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))


@pytest.mark.slow
def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_last_checkpoint(store, tmp_path) -> None:
    code, output = finish(torchrun(2, store, tmp_path, "--stop-at=2", **LAYOUTS[2]))
    assert code == 0, output[-3000:]
    checkpoints = tmp_path / "checkpoints"
    before = {p.relative_to(checkpoints): p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}

    # 64 KB per file: the metrics lines fit, the model's 290 KB of weights do not.
    process = torchrun(2, store, tmp_path, "--resume", "--stop-at=4", preexec=lambda: full_disk(64 * 1024),
                       **LAYOUTS[2])
    code, output = finish(process)
    # Two processes share the pipe: an error may land in the middle of rank 0's progress bar (\r-refreshed).
    errors = re.findall(r"megageo: error: [^\r\n]*", output)
    assert code != 0 and not re.search(r"\[rank\d\]: Traceback", output), output[-3000:]  # torchrun's own is fine
    assert len(errors) == 2, errors  # one per rank; each names what its own write met
    for line in errors:
        assert re.fullmatch(rf"megageo: error: checkpoint {re.escape(str(checkpoints))}/step00000004 "
                            r"could not be written \(this rank: .+; [\d.]+ GB free there\); "
                            r"'latest' still names step00000002", line), line
    after = {p.relative_to(checkpoints): p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}
    assert {path: after[path] for path in before} == before
