"""Pieces of the engine with exact answers: rank discovery, the LR schedule, batch sharding, DeepSpeed config."""

from __future__ import annotations

import math

import pytest
import torch

from megageo.config import ParallelConfig, TrainConfig
from megageo.errors import MegageoError
from megageo.parallel.launch_env import LaunchEnv, discover
from megageo.train.data import Sharding, TrainBatches
from megageo.train.engine import Layout, deepspeed_config
from megageo.train.schedule import WarmupCosine


def test_torchrun_variables() -> None:
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node7", "MASTER_PORT": "1234"}
    assert discover(env) == LaunchEnv(3, 1, 4, "node7", 1234, "torch")


def test_open_mpi_variables_with_master_from_environment() -> None:
    env = {"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_SIZE": "8",
           "MASTER_ADDR": "head", "MASTER_PORT": "29600"}
    assert discover(env) == LaunchEnv(5, 1, 8, "head", 29600, "openmpi")


def test_pals_variables_with_master_from_pbs_nodefile(tmp_path) -> None:
    nodefile = tmp_path / "nodes"
    nodefile.write_text("x3001c0s13b0n0.hsn.cm.polaris.alcf.anl.gov\nx3001c0s13b1n0.hsn.cm.polaris.alcf.anl.gov\n")
    env = {"PMI_RANK": "6", "PMI_LOCAL_RANK": "2", "PMI_SIZE": "8", "PBS_NODEFILE": str(nodefile),
           "MASTER_PORT": "29500"}
    assert discover(env) == LaunchEnv(6, 2, 8, "x3001c0s13b0n0.hsn.cm.polaris.alcf.anl.gov", 29500, "pmi")


def test_torchrun_wins_over_inherited_mpi_variables() -> None:
    env = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1",
           "PMI_RANK": "0", "PMI_SIZE": "1"}
    assert discover(env).source == "torch"


def test_no_launcher_is_one_process_on_loopback() -> None:
    launch = discover({})
    assert (launch.rank, launch.local_rank, launch.world_size, launch.master_addr, launch.source) == (
        0, 0, 1, "127.0.0.1", "single")


def test_bad_launcher_variables_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(MegageoError, match="rank 4 outside a world of 4"):
        discover({"RANK": "4", "WORLD_SIZE": "4", "MASTER_ADDR": "a", "MASTER_PORT": "1"})
    with pytest.raises(MegageoError, match="PMI_SIZE='eight' is not an integer"):
        discover({"PMI_RANK": "0", "PMI_SIZE": "eight"})
    with pytest.raises(MegageoError, match="is missing or empty"):
        discover({"PMI_RANK": "0", "PMI_SIZE": "2", "PBS_NODEFILE": str(tmp_path / "none")})


def test_warmup_then_cosine_to_min_lr() -> None:
    schedule = WarmupCosine(lr=1e-3, min_lr=1e-4, warmup_steps=4, steps=14)
    values = [schedule.value(step) for step in range(14)]
    assert values[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3], rel=1e-12)
    expected_decay = [1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * k / 10)) for k in range(1, 11)]
    assert values[4:] == pytest.approx(expected_decay, rel=1e-12)
    assert values[-1] == pytest.approx(1e-4, rel=1e-12)


def test_schedule_drives_the_optimizer_through_lambda_lr() -> None:
    from megageo.train.schedule import warmup_cosine

    schedule = WarmupCosine(lr=3e-4, min_lr=0.0, warmup_steps=2, steps=6)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-4)
    scheduler = warmup_cosine(optimizer, schedule)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([schedule.value(step) for step in range(6)], rel=1e-12)
    assert seen[1] == pytest.approx(3e-4) and seen[-1] == pytest.approx(0.0, abs=1e-18)


class Windows(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 10

    def read_window(self, index: int, part: int, parts: int, targets: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Window `index` is frames [10·index, 10·index + 4) and target -index; `part` of `parts` of the frames."""
        frames = torch.arange(4.0) + 10 * index
        share = 4 // parts
        return frames[part * share : (part + 1) * share], torch.tensor([-float(index)] if targets else [])


def _samples(dp_size: int, micro: int, step: int) -> list[list[int]]:
    """Sample ids of each DP rank's micro-batches at `step`."""
    out = []
    for rank in range(dp_size):
        batches = TrainBatches(Windows(), Sharding(4, micro, rank, dp_size), seed=9)
        out.append([int(v) // 10 for x, _ in batches.micro_batches(step) for v in x[:, 0]])
    return out


def test_context_parallel_ranks_read_their_block_of_the_same_samples() -> None:
    """CP=2 within DP=2: each CP rank takes its DP replica's samples, half of each window's frames, and only the
    last CP rank reads targets."""
    for dp_rank in range(2):
        x0, y0 = next(TrainBatches(Windows(), Sharding(4, 2, dp_rank, 2, cp_rank=0, cp_size=2), seed=9).micro_batches(1))
        x1, y1 = next(TrainBatches(Windows(), Sharding(4, 2, dp_rank, 2, cp_rank=1, cp_size=2), seed=9).micro_batches(1))
        (whole,) = [x for x, _ in TrainBatches(Windows(), Sharding(4, 2, dp_rank, 2), seed=9).micro_batches(1)]
        assert torch.equal(torch.cat([x0, x1], dim=1), whole)
        assert y0.shape == (2, 0) and torch.equal(y1[:, 0], -whole[:, 0] / 10)


def test_dp_ranks_split_the_same_global_batch() -> None:
    for step in range(5):
        (single,) = _samples(1, 2, step)
        assert sum(_samples(2, 2, step), []) == single
        assert sum(_samples(4, 1, step), []) == single


def test_each_epoch_is_a_seeded_permutation_without_the_remainder() -> None:
    batches = TrainBatches(Windows(), Sharding(4, 4, 0, 1), seed=9)
    assert batches.batches_per_epoch == 2
    epoch0 = torch.cat([batches.global_indices(0), batches.global_indices(1)]).tolist()
    epoch1 = torch.cat([batches.global_indices(2), batches.global_indices(3)]).tolist()
    assert len(set(epoch0)) == 8 and len(set(epoch1)) == 8 and epoch0 != epoch1
    assert epoch0 == torch.randperm(10, generator=torch.Generator().manual_seed(9))[:8].tolist()
    assert TrainBatches(Windows(), Sharding(4, 4, 0, 1), seed=9).global_indices(3).tolist() == epoch1[4:]


def test_batch_must_split_over_micro_batches_and_dp() -> None:
    with pytest.raises(MegageoError, match=r"global_batch_size=12 is not a multiple of .*micro_batch_size=4 x 2 "
                                           r"data-parallel ranks = 8"):
        Sharding(12, 4, 0, 2)


def test_deepspeed_config_carries_the_recipe() -> None:
    train = TrainConfig(global_batch_size=256, micro_batch_size=4, lr=3e-4, eps=1e-15, grad_clip=1.0,
                        weight_decay=0.1, precision="fp32")
    layout = Layout.of(ParallelConfig(tensor_parallel=2, pipeline_parallel=2, zero_stage=1), world_size=32)
    assert layout == Layout(tp=2, pp=2, dp=8, zero_stage=1)
    config = deepspeed_config(train, layout)
    assert (config["train_batch_size"], config["train_micro_batch_size_per_gpu"],
            config["gradient_accumulation_steps"]) == (256, 4, 8)
    params = config["optimizer"]["params"]
    assert (config["optimizer"]["type"], params["lr"], params["betas"], params["eps"], params["weight_decay"]) == (
        "AdamW", 3e-4, [0.9, 0.999], 1e-15, 0.1)
    assert config["gradient_clipping"] == 1.0 and config["zero_optimization"] == {"stage": 1}
    assert config["bf16"] == {"enabled": False}


def test_world_must_hold_whole_model_parallel_groups() -> None:
    expected = r"6 ranks cannot be split into tensor_parallel=2 x context_parallel=1 x pipeline_parallel=2 groups \(4 ranks"
    with pytest.raises(MegageoError, match=expected):
        Layout.of(ParallelConfig(tensor_parallel=2, pipeline_parallel=2), world_size=6)
