"""Predicted against measured peak memory: the cases, and how each is run and measured on this machine.

A case is a tiny config (configs/tiny/<mixer>.yaml shrunk as the model tests shrink it), a length and a layout. One
process runs megageo's forecaster through plain training steps (forward, backward, AdamW, gradients freed) on this
process's CPU; several ranks run the real DeepSpeed engine of `megageo.train` over gloo. Both measure the peak of
live tensor bytes (`measured_memory.peak_allocated`) from before the model is built to the end of the second step,
so weights, gradients, optimizer state, frames and activations all count, and compare it with the planner's
prediction for the `cpu-fp32` profile (runtime excluded: it is not tensors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from measured_memory import peak_allocated
from model.tiny_models import MIXER_SETTINGS

FRAME = (1, 8, 16)
TOLERANCE = 0.15


@dataclass(frozen=True)
class Case:
    mixer: str
    frames: int
    tp: int = 1
    cp: int = 1
    dp: int = 1
    zero: int = 0
    recompute: bool = False
    sequence_parallel: bool = False
    batch: int = 1
    shrunk: bool = True
    """Shrunk as the model tests shrink the tiny configs (hidden 32, 4 heads of 8), or the tiny config as it is."""
    settings: tuple[str, ...] = ()

    @property
    def world(self) -> int:
        return self.tp * self.cp * self.dp

    @property
    def name(self) -> str:
        parts = [self.mixer, f"T{self.frames}"]
        parts += [f"{key}{value}" for key, value in (("tp", self.tp), ("cp", self.cp), ("dp", self.dp), ("b", self.batch))
                  if value > 1]
        parts += [f"zero{self.zero}"] if self.zero else []
        parts += ["sp"] if self.sequence_parallel else []
        parts += ["ac"] if self.recompute else []
        parts += [] if self.shrunk else ["full"]
        return "-".join(parts + [setting.rsplit(".", 1)[-1] for setting in self.settings])

    def overrides(self) -> list[str]:
        shrink = {"model.hidden_size": 32, "model.num_layers": 2,
                  **{f"model.mixer.{key}": value for key, value in MIXER_SETTINGS[self.mixer].items()}}
        shrink = shrink if self.shrunk else {}
        layout = {"parallel.tensor_parallel": self.tp, "parallel.zero_stage": self.zero,
                  "parallel.sequence_parallel": str(self.sequence_parallel).lower(),
                  "parallel.activation_checkpointing": str(self.recompute).lower()}
        if self.cp > 1:
            layout["parallel.context_parallel"] = self.cp
        run = {"data.t_in": self.frames, "data.t_out": 1, "train.micro_batch_size": self.batch,
               "train.global_batch_size": self.batch * self.dp, "train.precision": "fp32"}
        return [f"{key}={value}" for key, value in {**shrink, **layout, **run}.items()] + list(self.settings)

    def config(self):
        from megageo.config import load_config

        return load_config(f"configs/tiny/{self.mixer}.yaml", self.overrides())

    def predicted(self):
        from megageo.plan.device import DEVICES
        from megageo.plan.job import describe
        from megageo.plan.memory import Layout, memory

        layout = Layout(self.tp, self.cp, 1, self.dp, self.zero, self.recompute, self.sequence_parallel)
        return memory(describe(self.config(), self.frames, FRAME, self.batch), layout, DEVICES["cpu-fp32"])


def measure_single_process(case: Case) -> int:
    """Peak bytes of building the forecaster and two training steps in this process (a world of one)."""
    import torch

    from megageo.model.block import recompute_blocks
    from megageo.model.forecaster import Forecaster, forecast_loss
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext

    config = case.config().model

    def run() -> None:
        model = Forecaster(config, FRAME, 1, TensorParallelContext(1, 0, False, config.init_std, config.num_layers))
        initialize_parameters(model, seed=0, tp=1, rank=0)
        if case.recompute:
            recompute_blocks(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
        generator = torch.Generator().manual_seed(0)
        frames = torch.randn(case.batch, case.frames, *FRAME, generator=generator)
        target = torch.randn(case.batch, 1, *FRAME, generator=generator)
        for _ in range(2):
            forecast_loss(model(frames), target).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return peak_allocated(run)


def measure_on_ranks(cases: list[Case]) -> list[int]:
    """On each of the ranks `tests/multiprocess.run_ranks` started: build `megageo.train`'s engine for each case
    and run two steps on random frames (this rank's block of them under CP); this rank's peak bytes per case."""
    import torch
    from megatron.core import parallel_state

    from megageo.parallel import groups
    from megageo.train.engine import Layout, TrainEngine

    torch.set_num_threads(1)
    peaks = []
    for case in cases:
        config = case.config()
        groups.initialize(case.tp, 1, context_parallel=case.cp)
        cp_rank = parallel_state.get_context_parallel_rank()
        generator = torch.Generator().manual_seed(int(os.environ["RANK"]))

        def run() -> None:
            engine = TrainEngine(config, Layout.of(config.parallel, case.world), FRAME)
            frames = torch.randn(case.batch, case.frames // case.cp, *FRAME, generator=generator)
            target = torch.randn(case.batch, 1 if cp_rank == case.cp - 1 else 0, *FRAME, generator=generator)
            for _ in range(2):
                engine.train_step([(frames, target)])

        peaks.append(peak_allocated(run))
    groups.shutdown()
    return peaks


def compare(case: Case, measured: int) -> tuple[list[float], str]:
    """Relative errors of the prediction, and a report line (MiB, 2^20 bytes). Under ZeRO-1/2 DeepSpeed's gradient
    bucket (`REDUCE_BUCKET` elements, allocated whole) dwarfs a tiny model, so the error is also given without it."""
    from megageo.plan.memory import REDUCE_BUCKET

    prediction = case.predicted()
    predicted = prediction.total - prediction.runtime
    errors = [(predicted - measured) / measured]
    line = (f"{case.name:<36} predicted {predicted / 2**20:8.1f} MiB  measured {measured / 2**20:8.1f} MiB  "
            f"error {100 * errors[0]:+5.1f} %")
    if case.zero in (1, 2):
        bucket = REDUCE_BUCKET * 4
        errors.append((predicted - measured) / (measured - bucket))
        line += f" ({100 * errors[1]:+.1f} % of the {(measured - bucket) / 2**20:.1f} MiB besides the bucket)"
    parts = ", ".join(f"{name} {value / 2**20:.1f}" for name, value in prediction.parts().items() if value)
    return errors, f"{line}  [{prediction.moment}: {parts}]"
