"""Fault injection for the fault tests, loaded into every process of a launched job as `sitecustomize`.

MEGAGEO_FAULT="WHERE:STEP:RANK" makes rank RANK kill itself with SIGKILL, as the kernel's OOM killer or a failing
node would, at one deterministic point: `step` in the backward pass of training step STEP (after the forward,
before the gradients are reduced), `save` while checkpoint STEP is being written (after this rank's first file of
it is on disk, before the others). Just before, it writes the time to MEGAGEO_FAULT_MARK so a test can bound how
long the job takes to end. The package under test is not modified: the hooks wrap DeepSpeed and torch functions.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _die() -> None:
    Path(os.environ["MEGAGEO_FAULT_MARK"]).write_text(repr(time.time()))
    os.kill(os.getpid(), signal.SIGKILL)


def _install(where: str, step: int) -> None:
    import deepspeed
    import torch

    if where == "step":
        backward, calls = deepspeed.DeepSpeedEngine.backward, []

        def backward_then_die(engine, *args, **kwargs):
            calls.append(1)
            if len(calls) == step:
                _die()
            return backward(engine, *args, **kwargs)

        deepspeed.DeepSpeedEngine.backward = backward_then_die
    else:
        save_checkpoint, save = deepspeed.DeepSpeedEngine.save_checkpoint, torch.save
        tag = f"step{step:08d}"

        def save_checkpoint_then_die(engine, save_dir, tag=None, **kwargs):
            if tag == f"step{step:08d}":
                torch.save = save_then_die
            return save_checkpoint(engine, save_dir, tag=tag, **kwargs)

        def save_then_die(obj, path, *args, **kwargs):
            save(obj, path, *args, **kwargs)
            if tag in str(path):
                _die()

        deepspeed.DeepSpeedEngine.save_checkpoint = save_checkpoint_then_die


_fault = os.environ.get("MEGAGEO_FAULT")
if _fault:
    _where, _step, _rank = _fault.split(":")
    if os.environ.get("RANK") == _rank:
        _install(_where, int(_step))
