"""`megageo bench models`: rounds interleaved across cases, ratios taken round by round with their range, and the
profile of one step. The arithmetic is checked on measurements written by hand; the command end to end on tiny
frames."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from megageo.bench import models
from megageo.bench.models import BenchCase


def measured(mixer: str, seq_len: int, step_s: list[float], sample_s: list[float], peak: list[float]) -> BenchCase:
    case = BenchCase(mixer, f"{mixer}.yaml", seq_len, batch_size=2)
    for step, sample, gb in zip(step_s, sample_s, peak):
        case.absorb(BenchCase(mixer, case.config, seq_len, 2, step_s=[step], sample_s=[sample], peak_mem_gb=gb,
                              flops_per_token=1e9))
    return case


def test_rounds_fold_into_medians_and_the_largest_peak() -> None:
    case = measured("gla", 100, [1.0, 4.0, 2.0], [0.3, 0.1, 0.2], [1.5, 1.7, 1.6])
    assert case.tokens_per_s == 2 * 100 / 2.0 and case.tflops == 1e9 * 100 / 1e12
    assert case.latency_ms == pytest.approx(200.0) and case.peak_mem_gb == 1.7
    assert case.spread == (4.0 - 1.0) / (2 * 2.0)


def test_a_failed_round_ends_the_case_with_its_reason() -> None:
    case = measured("gla", 100, [1.0], [0.1], [1.0])
    case.absorb(BenchCase("gla", "gla.yaml", 100, 2, status="oom", error="killed"))
    assert (case.status, case.error, case.step_s) == ("oom", "killed", [1.0])


def test_ratios_are_taken_round_by_round() -> None:
    gla = measured("gla", 64, [1.0, 2.0, 1.0], [0.5, 0.5, 0.25], [3.0, 3.0, 3.0])
    transformer = measured("transformer", 64, [2.0, 3.0, 4.0], [1.0, 0.5, 1.0], [2.0, 2.0, 2.0])
    short = measured("gla", 8, [1.0], [1.0], [1.0])  # the transformer has no 8: the longest shared length is used
    assert models.ratios_to_transformer([short, gla, transformer]) == [
        "gla vs transformer at 64 frames: throughput ×2.00 (×1.50–×4.00 over 3 rounds), "
        "inference speed ×2.00 (×1.00–×4.00 over 3 rounds), peak memory ×1.50"]
    one_round = [measured("gla", 64, [1.0], [0.5], [3.0]), measured("transformer", 64, [3.0], [1.0], [2.0])]
    assert models.ratios_to_transformer(one_round) == [
        "gla vs transformer at 64 frames: throughput ×3.00 (1 round), inference speed ×2.00 (1 round), "
        "peak memory ×1.50"]


def test_rounds_interleave_cases_and_alternate_their_order(monkeypatch, tmp_path) -> None:
    configs = []
    for mixer in ("gla", "transformer"):
        configs.append(tmp_path / f"{mixer}.yaml")
        configs[-1].write_text(f"base: {models.__file__.rsplit('/megageo/', 1)[0]}/configs/tiny/{mixer}.yaml\n")
    order = []

    def fake_run_case(case: BenchCase, frame, steps, threads, timeout_s) -> BenchCase:
        order.append((case.mixer, case.seq_len))
        if case.mixer == "transformer" and case.seq_len == 32:
            case.status = "oom"
            return case
        case.step_s, case.sample_s, case.peak_mem_gb = [len(order)], [1.0], 1.0
        return case

    monkeypatch.setattr(models, "run_case", fake_run_case)
    results = models.run_bench([str(path) for path in configs], [16, 32], 1, (1, 8, 16), 1, 1, 60.0, rounds=3)
    first = [("gla", 16), ("transformer", 16), ("gla", 32), ("transformer", 32)]
    kept = [case for case in first if case != ("transformer", 32)]  # out of memory once is enough
    assert order == first + kept[::-1] + kept
    assert [(case.mixer, case.seq_len, case.status, case.step_s) for case in results] == [
        ("gla", 16, "ok", [1, 7, 8]), ("gla", 32, "ok", [3, 5, 10]),
        ("transformer", 16, "ok", [2, 6, 9]), ("transformer", 32, "oom", [])]


def test_zero_rounds_is_one_line(tmp_path) -> None:
    from megageo.errors import MegageoError

    with pytest.raises(MegageoError, match="--rounds must be at least 1, got 0"):
        models.run_bench(["configs/tiny/gla.yaml"], [16], 1, (1, 8, 16), 1, 1, 60.0, rounds=0)


@pytest.mark.slow
def test_bench_models_end_to_end_writes_every_round(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "megageo", "bench", "models", "--configs", "configs/tiny/gla.yaml",
         "configs/tiny/transformer.yaml", "--seq-lens", "8", "--frame", "1,8,16", "--steps", "1", "--rounds", "2",
         "--threads", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["mixer"], r["seq_len"], r["status"], len(r["step_s"]), len(r["sample_s"])) for r in records] == [
        ("gla", 8, "ok", 2, 2), ("transformer", 8, "ok", 2, 2)]
    gla, transformer = records
    ratios = sorted(t / g for g, t in zip(gla["step_s"], transformer["step_s"]))
    assert (f"gla vs transformer at 8 frames: throughput ×{(ratios[0] + ratios[1]) / 2:.2f} "
            f"(×{ratios[0]:.2f}–×{ratios[1]:.2f} over 2 rounds)") in result.stdout
    assert (tmp_path / "bench.png").stat().st_size > 0


@pytest.mark.slow
def test_profile_prints_each_mixers_top_operators() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "megageo", "bench", "models", "--configs", "configs/tiny/gla.yaml",
         "configs/tiny/transformer.yaml", "--seq-lens", "4,8", "--frame", "1,8,16", "--threads", "1", "--profile"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    headers = re.findall(r"^(\w+) \(configs/tiny/\w+\.yaml\) at 8 frames, one training step:$", result.stdout, re.M)
    assert headers == ["gla", "transformer"]
    assert result.stdout.count("Self CPU time total") == 2
    gla, transformer = result.stdout.split("transformer (configs")
    assert "aten::" in gla and "aten::" in transformer
