"""A twin experiment that finished is not run again by a rerun of the same settings, and is by any other."""

from __future__ import annotations

import time

import pytest

from megageo.da.experiment_cache import ExperimentCache


def test_a_finished_experiment_is_reused_only_under_its_own_fingerprint(tmp_path) -> None:
    calls = []

    def experiment() -> dict[str, list[float]]:
        calls.append(1)
        time.sleep(0.05)
        return {"rmse": [9.7, 10.1]}

    first = ExperimentCache(tmp_path / "partial", "settings A")
    assert first.get_or_run("seed_0", experiment) == {"rmse": [9.7, 10.1]} and len(calls) == 1
    assert first.reused_seconds == 0.0
    again = ExperimentCache(tmp_path / "partial", "settings A")
    assert again.get_or_run("seed_0", experiment) == {"rmse": [9.7, 10.1]} and len(calls) == 1
    assert 0.05 <= again.reused_seconds < 5  # what the first run took, for the report's time in all
    other = ExperimentCache(tmp_path / "partial", "settings B")
    assert other.get_or_run("seed_0", experiment) == {"rmse": [9.7, 10.1]} and len(calls) == 2
    assert other.reused_seconds == 0.0
    other.clear()
    assert not (tmp_path / "partial").exists()


def test_an_experiment_that_fails_leaves_nothing_to_reuse(tmp_path) -> None:
    def failing() -> None:
        raise RuntimeError("walltime")

    cache = ExperimentCache(tmp_path / "partial", "settings A")
    with pytest.raises(RuntimeError, match="walltime"):
        cache.get_or_run("seed_1", failing)
    assert not (tmp_path / "partial").exists() or not any((tmp_path / "partial").iterdir())
