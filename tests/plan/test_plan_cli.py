"""`megageo plan`: a table of the layouts that fit; one line and exit 1 when none does; one line and exit 2 on bad
input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from megageo.cli import main

CPU_BOX = ["--nodes", "1", "--gpus-per-node", "2", "--device", "cpu-fp32", "--interconnect", "cpu",
           "--frame", "1,8,16"]


def test_table_lists_fitting_layouts_fastest_first(capsys) -> None:
    assert main(["plan", "--config", "configs/tiny/gla.yaml", "--frames", "4096", *CPU_BOX, "--top", "0"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("#"))
    for column in ("layout", "step s", "GiB/GPU", "weights", "grads", "optim", "frames", "activ", "CP buf", "TP GB",
                   "DP GB"):
        assert column in header
    rows = [line for line in out.splitlines() if line[:3].strip().isdigit() and line[5:7] == "TP"]
    # 2 ranks, 4096 frames, 2 layers: (TP, CP, PP) = (1,1,1) DP2, (1,1,2), (1,2,1), (2,1,1) ± SP; ZeRO; AC
    assert len(rows) == 36 and "36 of 36 valid layouts fit" in out
    step_times = [float(row[32:40]) for row in rows]  # the 'step s' column follows the 27-wide layout
    assert step_times == sorted(step_times)


def test_json_has_memory_parts_and_communication(capsys) -> None:
    assert main(["plan", "--config", "configs/tiny/transformer.yaml", "--frames", "1024", *CPU_BOX, "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert len(plans) == 10
    first = plans[0]
    assert set(first["memory_bytes"]) >= {"weights", "gradients", "optimizer", "frames", "activations",
                                          "cp_buffers", "total"}
    assert set(first["communication_bytes"]) == {"tp", "cp", "dp", "pp"}
    assert first["memory_bytes"]["total"] == pytest.approx(sum(v for k, v in first["memory_bytes"].items()
                                                               if k != "total"))


def test_nothing_fits_is_one_line_and_exit_1() -> None:
    result = subprocess.run([sys.executable, "-m", "megageo", "plan", "--config", "configs/340m/transformer.yaml",
                             "--frames", "1048576", "--nodes", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("megageo")]
    assert len(lines) == 1 and lines[0].startswith("megageo: nothing fits configs/340m/transformer.yaml")
    assert "GiB per GPU" in lines[0] and "largest part" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--config", "configs/tiny/missing.yaml", "--frames", "8", "--nodes", "1"], "config file not found"),
    (["--config", "configs/tiny/gla.yaml", "--frames", "0", "--nodes", "1"], "--frames must be at least 1"),
    (["--config", "configs/tiny/gla.yaml", "--frames", "8", "--nodes", "0"], "--nodes and --gpus-per-node"),
    (["--config", "configs/tiny/gla.yaml", "--frames", "8", "--nodes", "1", "--micro-batch", "3"],
     "train.global_batch_size=16 is not a multiple of train.micro_batch_size=3"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys) -> None:
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("megageo: error: ") and message in err and "\n" not in err


def test_a_token_plan_counts_tokens(capsys) -> None:
    """The tiny token GLA (8 × 8 patches) on the box's 8 × 16 test frame: 1 × 2 tokens a frame."""
    assert main(["plan", "--config", "configs/tiny/gla_tokens.yaml", "--frames", "1456", *CPU_BOX, "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "1,456 frames of 128 values = 2,912 tokens (2 a frame, patch 8, frame-causal)" in out
    assert "fit; the 1 fastest" in out
