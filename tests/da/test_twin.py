"""`megageo da twin` end to end at toy size: a shallow-water store, a denoiser trained for two steps, two cycles.
The numbers in report.md are twin.json's, and the baselines behave as their definitions demand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_twin_report_lists_every_method_with_the_numbers_of_its_run(tmp_path) -> None:
    from megageo.cli import main

    assert main(["data", "synth", "--out", str(tmp_path / "nc"), "--days", "6", "--seed", "0"]) == 0
    assert main(["data", "build", "--src", str(tmp_path / "nc"), "--out", str(tmp_path / "store.h5"), "--vars", "hgt",
                 "--levels", "500", "--train-fraction", "0.75"]) == 0
    settings = {"data.store": tmp_path / "store.h5", "train.out_dir": tmp_path / "run", "train.steps": 2,
                "train.save_every": 2, "train.eval_every": 0, "train.global_batch_size": 2, "train.micro_batch_size": 2,
                "model.hidden_size": 16, "model.num_layers": 1, "model.mixer": "{type: global_linear, num_heads: 2, "
                "head_dim: 8}", "diffusion.steps": 2, "diffusion.corrections": 0}
    assert main(["train", "--config", "configs/tiny/diffusion.yaml",
                 *(f"--set={key}={value}" for key, value in settings.items())]) == 0
    out = tmp_path / "twin"
    assert main(["da", "twin", str(tmp_path / "run"), "--out", str(out), "--cycles", "2", "--seeds", "1",
                 "--members", "2", "--burn-in", "0"]) == 0
    report = json.loads((out / "twin.json").read_text())
    assert report["settings"]["stations"] == round(0.1 * 73 * 144) and report["settings"]["grid"] == [73, 144]
    assert set(report["tuning_rmse"]) == {"1000", "2000", "4000", "8000"}
    assert report["settings"]["oi_half_width_km"] == min(map(float, report["tuning_rmse"]), key=lambda r: report[
        "tuning_rmse"][f"{r:g}"])
    methods = report["methods"]
    assert list(methods) == ["generative", "oi", "prior", "climatology"]
    assert methods["oi"]["rmse"]["mean"] < methods["climatology"]["rmse"]["mean"]  # 1,051 stations help
    assert sum(report["rank_histogram"]) == 2 * 73 * 144 and len(report["rank_histogram"]) == 3
    markdown = (out / "report.md").read_text()
    for method, values in methods.items():
        row = re.search(rf"^\| {method} \| ([\d.]+) ± ", markdown, re.MULTILINE)
        assert row and float(row[1]) == round(values["rmse"]["mean"], 1)
    assert (out / "twin_rmse.png").stat().st_size > 10_000 and (out / "twin_maps.png").stat().st_size > 10_000
