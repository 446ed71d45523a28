"""Checkpoints shared by the conversion tests (one training run each per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs import SAVED_AT, STEPS, TP2, train
from train.tiny_run import build_tiny_store


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="session")
def zero3_run(store, tmp_path_factory) -> Path:
    """TP=1, DP=2, ZeRO-3, 3 steps."""
    out = tmp_path_factory.mktemp("zero3")
    train(2, store, out, parallel__zero_stage=3, train__steps=3)
    return out


@pytest.fixture(scope="session")
def tp2_run(store, tmp_path_factory) -> Path:
    """TP=2, ZeRO-1, stopped with a checkpoint after step 4 of an 8-step schedule (LR still non-zero)."""
    out = tmp_path_factory.mktemp("tp2")
    train(2, store, out, stop_at=SAVED_AT, train__steps=STEPS, **TP2)
    return out
