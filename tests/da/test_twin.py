"""`megageo da twin` end to end at toy size: a shallow-water store, a denoiser trained for two steps, two cycles,
four-member filters. The numbers in report.md are twin.json's, the tuned values are the tuning runs' best, and the
baselines behave as their definitions demand."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from megageo.data.grid import latitude_weights


@pytest.mark.slow
def test_twin_report_lists_every_method_with_the_numbers_of_its_run(tmp_path, monkeypatch) -> None:
    import megageo.da.twin
    from megageo.cli import main

    assert main(["data", "synth", "--out", str(tmp_path / "nc"), "--days", "6", "--seed", "0"]) == 0
    assert main(["data", "build", "--src", str(tmp_path / "nc"), "--out", str(tmp_path / "store.h5"), "--vars", "hgt",
                 "--levels", "500", "--train-fraction", "0.75"]) == 0
    settings = {"data.store": tmp_path / "store.h5", "train.out_dir": tmp_path / "run", "train.steps": 2,
                "train.save_every": 2, "train.eval_every": 0, "train.global_batch_size": 2, "train.micro_batch_size": 2,
                "model.hidden_size": 16, "model.num_layers": 1, "model.mixer": "{type: global_linear, num_heads: 2, "
                "head_dim: 8}"}
    assert main(["train", "--config", "configs/tiny/diffusion.yaml",
                 *(f"--set={key}={value}" for key, value in settings.items())]) == 0
    out = tmp_path / "twin"
    twin = ["da", "twin", str(tmp_path / "run"), "--out", str(out), "--cycles", "2", "--seeds", "1", "--members", "2",
            "--burn-in", "0", "--filter-members", "4", "--set", "diffusion.steps=2", "--set", "diffusion.corrections=0"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # after the tuning truth, at the first truth's sampler

    with monkeypatch.context() as patch:
        patch.setattr(megageo.da.twin, "sample_window", interrupted)
        with pytest.raises(KeyboardInterrupt):
            main(twin)
    assert [path.name for path in (out / "partial").iterdir()] == ["tuning.pkl"] and not (out / "report.md").exists()
    assert main(twin) == 0  # goes on from the tuning truth's results
    assert not (out / "partial").exists()
    report = json.loads((out / "twin.json").read_text())
    assert 0 < report["reused_seconds"] < report["wall_seconds"]
    assert report["settings"]["stations"] == round(0.1 * 73 * 144) and report["settings"]["grid"] == [73, 144]
    tuning, tuned = report["tuning_rmse"], report["tuned"]
    assert report["settings"]["tuning_cycles"] == 2  # by default the tuning truth runs as long as the scored ones
    assert list(tuning["oi"]) == list(tuning["window_oi"]) == ["1000 km", "2000 km", "4000 km", "8000 km"]
    assert list(tuning["letkf"]) == [f"{width} km, {inflation}" for width in (1500, 2500, 3500)
                                     for inflation in (1.05, 1.1, 1.25)]
    assert list(tuning["enkf"]) == ["1.1", "1.3", "1.6"]
    for method in ("oi", "window_oi"):
        assert f"{tuned[f'{method}_half_width_km']:g} km" == min(tuning[method], key=tuning[method].get)
    assert f"{tuned['letkf_half_width_km']:g} km, {tuned['letkf_inflation']:g}" == min(tuning["letkf"],
                                                                                        key=tuning["letkf"].get)
    assert f"{tuned['enkf_inflation']:g}" == min(tuning["enkf"], key=tuning["enkf"].get)
    methods = report["methods"]
    assert list(methods) == ["generative", "letkf", "enkf", "oi", "window_oi", "free", "prior", "climatology"]
    rmse = {method: values["rmse"]["mean"] for method, values in methods.items()}
    assert rmse["oi"] < rmse["climatology"]  # 1,051 stations help
    assert rmse["letkf"] < 0.7 * rmse["free"] and rmse["enkf"] < rmse["free"]  # the filters see them too
    assert sum(report["rank_histogram"]) == 2 * 73 * 144 and len(report["rank_histogram"]) == 3
    markdown = (out / "report.md").read_text()
    assert "Tuned on a separate truth (2 cycles after the same burn-in)" in markdown
    assert f"({report['reused_seconds'] / 60:.1f} of them in an interrupted run whose experiments" in markdown
    assert ("Sampler: edm denoiser added to the exact denoiser of the training windows' zonally stationary, "
            "mirror-symmetric Gaussian (tapered at 6000 km), 2 steps, no corrector, mmps guidance (10 CG step(s)) "
            "through the Gaussian base's Jacobian.") in markdown  # the tiny config's sampler
    for method, values in methods.items():
        row = re.search(rf"^\| {method} \| ([\d.]+) ± ", markdown, re.MULTILINE)
        assert row and float(row[1]) == round(values["rmse"]["mean"], 1)
    by_cycle = report["rmse_by_cycle"]  # per seed, per cycle: a long run's filters settle, the one-stage prior not
    assert list(by_cycle) == list(methods)
    for method, values in methods.items():
        assert [len(seed) for seed in by_cycle[method]] == [2]
        assert math.sqrt(np.mean(np.square(by_cycle[method][0]))) == pytest.approx(values["rmse"]["mean"], rel=1e-12)
    zonal, lat = report["zonal_rmse"], np.array(report["latitudes"])
    assert list(zonal) == list(methods) and all(len(profile) == 73 for profile in zonal.values())
    for method, values in methods.items():  # the profile's area-weighted mean square is the method's RMSE
        weighted = np.mean(latitude_weights(lat) * np.square(zonal[method]))
        assert math.sqrt(weighted) == pytest.approx(values["rmse"]["mean"], rel=1e-9)
    worst = int(np.argmax(zonal["generative"]))
    assert f"generative {zonal['generative'][worst]:.1f} m at {abs(lat[worst]):g}° " in markdown
    texture = report["texture"]
    assert list(texture) == ["truth", "prior", "generative"]
    # A two-step prior over the tiny config's Gaussian base draws that Gaussian of a 4.5-day training split, whose
    # anomalies are small: measured, its 6-hour change is 6.0 m against the truth's 30.3 m (without the base the
    # network's noise drew 1.5 x the truth's).
    assert texture["prior"]["tendency"] < 0.5 * texture["truth"]["tendency"]
    for source, values in texture.items():
        assert f"| {source} | {values['tendency']:.1f} | {values['roughness']:.1f} |" in markdown
    assert (out / "twin_rmse.png").stat().st_size > 10_000 and (out / "twin_maps.png").stat().st_size > 10_000


def test_the_sampler_line_names_the_gaussian_base_and_a_warm_start() -> None:
    from dataclasses import asdict, replace

    from megageo.config import DiffusionConfig
    from megageo.da.twin import sampler_line

    plain = DiffusionConfig(guidance="gaussian", tau=0.1)
    assert sampler_line(asdict(plain)) == (
        "Sampler: edm denoiser, 32 steps, 1 corrector(s) at τ = 0.1, gaussian guidance (γ = 0.01).")
    based = replace(plain, gaussian_base=True, start_time=0.25, guidance="mmps", guidance_jacobian="gaussian_base",
                    corrections=0)
    assert sampler_line(asdict(based)) == (
        "Sampler: edm denoiser added to the exact denoiser of the training windows' zonally stationary, "
        "mirror-symmetric Gaussian (tapered at 6000 km), 32 steps, no corrector, mmps guidance (1 CG step(s)) "
        "through the Gaussian base's Jacobian. Started at t = 0.25 from window OI's analysis of every frame, noised "
        "to it.")
