"""`megageo bench context` end to end: each case a fresh group of gloo ranks, its results written and summarised."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

FRAME = (1, 8, 16)


@pytest.mark.slow
def test_bench_context_measures_each_degree_and_writes_its_results(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "megageo", "bench", "context", "--configs", "configs/tiny/gla.yaml",
         "configs/tiny/gla_tokens.yaml", "--lengths", "64", "--cp", "1,2", "--frame", ",".join(map(str, FRAME)), "--steps", "2", "--threads", "1",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = json.loads((tmp_path / "bench_context.json").read_text())
    assert [(case["mixer"], case["frames"], case["tokens"], case["cp"], case["status"]) for case in cases] == [
        ("gla", 64, 64, 1, "ok"), ("gla", 64, 64, 2, "ok"),
        ("gla/p8 frame-causal", 64, 128, 1, "ok"), ("gla/p8 frame-causal", 64, 128, 2, "ok")]  # 1 × 2 patches of 8 × 8
    for case in cases:
        # each rank holds its contiguous block of the input: 64 / CP frames of fp32
        assert case["frames_gb"] == 64 // case["cp"] * 8 * 16 * 4 / 1e9
        assert len(case["step_s"]) == 2 and len(case["peak_gb"]) == case["cp"]
        assert case["ms_per_1k_frames"] == pytest.approx(1e6 * sorted(case["step_s"])[1] / 64)
        assert case["tokens_per_s"] == pytest.approx(case["tokens"] / sorted(case["step_s"])[1])
    one, two = cases[:2]
    assert re.search(rf"gla: per-rank peak memory CP=2 / CP=1 at 64 frames = {max(two['peak_gb']):.2f} / "
                     rf"{max(one['peak_gb']):.2f} GB", result.stdout), result.stdout
    assert f"wrote {tmp_path / 'bench_context.json'}" in result.stdout
