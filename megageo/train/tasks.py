"""What a training run learns: a registry of tasks, each a model to build and the loss one micro-batch gives it.

`task: forecast` (the seed paper's: a window of frames → the next frames) is defined here; other packages add
theirs by registering a `module:attribute` path (`megageo.da` registers `diffusion`), so this module never
imports them and naming a task costs nothing until a run builds it. Every task trains through the same engine,
so it gets every parallel layout, checkpoint and conversion tool.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from megageo.errors import MegageoError

if TYPE_CHECKING:
    import torch

    from megageo.config import Config
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel.context import ContextParallel

TASKS: dict[str, str] = {"forecast": "megageo.train.tasks:ForecastTask"}


def register_task(name: str, target: str) -> None:
    """Make `name` (the config's `task`) build `target`, a `module:attribute` path to a `Task` class."""
    TASKS[name] = target


class Task(Protocol):
    def __init__(self, config: Config): ...

    def build(self, frame_shape: tuple[int, int, int], ctx: TensorParallelContext) -> torch.nn.Module:
        """The model at this rank's layout (TP=1 and no process group for the conversion tools' skeleton)."""

    def loss(self, model: Any, x: torch.Tensor, y: torch.Tensor, cp: ContextParallel,
             weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """This rank's objective on one micro-batch; averaged over the DP×CP group it is the batch's loss.
        `generator` draws whatever randomness the task needs, seeded by the engine from (seed, step, micro-batch)."""


def task_for(config: Config) -> Task:
    target = TASKS.get(config.task)
    if target is None:
        raise MegageoError(f"config key task names {config.task!r}, not one of {', '.join(sorted(TASKS))}")
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)(config)


def unsharded_model(config: Config, frame_shape: tuple[int, int, int]) -> torch.nn.Module:
    """The TP=1 model of the config's task with uninitialised weights (shapes and partition declarations only):
    what the conversion tools, `megageo plan` and the parameter counts read, with no process group."""
    from megageo.model.forecaster import unsharded_context

    return task_for(config).build(frame_shape, unsharded_context(config.model))


class ForecastTask:
    """The seed paper's task: the window's T_out next frames by MSE (eq. 11), directly or by the model's rollout."""

    def __init__(self, config: Config):
        self.config = config

    def build(self, frame_shape: tuple[int, int, int], ctx: TensorParallelContext) -> torch.nn.Module:
        from megageo.model.forecaster import Forecaster

        return Forecaster(self.config.model, frame_shape, self.config.data.t_out, ctx)

    def loss(self, model: Any, x: torch.Tensor, y: torch.Tensor, cp: ContextParallel,
             weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        from megageo.model.forecaster import context_parallel_loss
        from megageo.model.rollout import rollout

        steps = self.config.train.rollout_steps
        forecast = model(x) if steps == 1 else rollout(model, x, y.shape[1])
        return context_parallel_loss(forecast, y, cp, weights)
