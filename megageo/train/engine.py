"""The DeepSpeed engine around the forecaster: layout, DeepSpeed config, optimizer, schedule, one training step.

Megatron-core owns the process groups and the tensor-parallel layers; DeepSpeed owns the optimizer, ZeRO,
precision, gradient clipping, the LR schedule and (for PP > 1) the pipeline schedule. DeepSpeed learns the
TP/DP layout from `megageo.parallel.mpu`, or from the `PipelineModule`'s own grid when pipelining.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from megageo.config import Config, ParallelConfig, TrainConfig
from megageo.errors import MegageoError
from megageo.model.block import recompute_blocks
from megageo.model.init import initialize_parameters
from megageo.model.parallel_layers import TensorParallelContext
from megageo.parallel import groups, mpu
from megageo.train.data import Batch
from megageo.train.schedule import WarmupCosine, warmup_cosine
from megageo.train.tasks import task_for


def use_cpu_accelerator() -> None:
    """DeepSpeed picks its accelerator once, at import: tell it before the first import when there is no GPU."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def skip_cpu_shm_comm_build() -> None:
    """On CPU, DeepSpeed JIT-compiles a shared-memory all-reduce when its communication backend starts: a minute of
    g++ on first use, and a file lock that hangs every later start if a build is killed half-way. Only its
    `inference_all_reduce` uses that op, which training never calls, so megageo marks it unavailable."""
    import deepspeed.ops

    if not torch.cuda.is_available():
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


@dataclass(frozen=True)
class Layout:
    tp: int
    pp: int
    dp: int
    zero_stage: int
    cp: int = 1

    @property
    def world_size(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def gradient_replicas(self) -> int:
        """Ranks that hold the same weights and average their gradients: data-parallel × context-parallel."""
        return self.dp * self.cp

    @classmethod
    def of(cls, parallel: ParallelConfig, world_size: int) -> Layout:
        model_parallel = parallel.tensor_parallel * parallel.context_parallel * parallel.pipeline_parallel
        if world_size % model_parallel:
            raise MegageoError(
                f"{world_size} ranks cannot be split into tensor_parallel={parallel.tensor_parallel} x "
                f"context_parallel={parallel.context_parallel} x pipeline_parallel={parallel.pipeline_parallel} "
                f"groups ({model_parallel} ranks each)"
            )
        return cls(parallel.tensor_parallel, parallel.pipeline_parallel, world_size // model_parallel,
                   parallel.zero_stage, parallel.context_parallel)

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "cp": self.cp, "pp": self.pp, "dp": self.dp, "zero_stage": self.zero_stage}


def use_bf16(train: TrainConfig) -> bool:
    return train.precision == "bf16" or (train.precision == "auto" and torch.cuda.is_available())


def deepspeed_config(train: TrainConfig, layout: Layout) -> dict[str, Any]:
    """Table 3's recipe in DeepSpeed's terms; global batch = micro-batch x accumulation x DP. DeepSpeed counts the
    CP ranks among its data-parallel ranks (see `megageo.parallel.mpu`), so its batch is cp times the samples'."""
    return {
        "train_batch_size": train.global_batch_size * layout.cp,
        "train_micro_batch_size_per_gpu": train.micro_batch_size,
        "gradient_accumulation_steps": train.global_batch_size // (train.micro_batch_size * layout.dp),
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": train.lr, "betas": [train.beta1, train.beta2], "eps": train.eps,
                "weight_decay": train.weight_decay, "torch_adam": not torch.cuda.is_available(),
            },
        },
        "gradient_clipping": train.grad_clip,
        "zero_optimization": {"stage": layout.zero_stage},
        "bf16": {"enabled": use_bf16(train)},
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def parameter_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only; norms, biases and per-head vectors are not decayed (Megatron's rule)."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def mark_norm_owners(module: torch.nn.Module, tp_rank: int) -> None:
    """DeepSpeed counts a gradient in the global norm on every rank whose parameter is `model_parallel`, and all
    parameters on model-parallel rank 0. Under PP that rank-0 test spans the pipeline too, so replicated
    parameters of later stages would be left out; marking them on TP rank 0 counts each parameter exactly once."""
    for param in module.parameters():
        if not getattr(param, "tensor_model_parallel", False):
            param.model_parallel = tp_rank == 0


class TrainEngine:
    """One training step and one evaluation pass over a DeepSpeed engine, pipelined or not."""

    def __init__(self, config: Config, layout: Layout, frame_shape: tuple[int, int, int],
                 loss_weights: torch.Tensor | None = None):
        use_cpu_accelerator()
        import deepspeed

        from megageo.train.pipeline import build_pipeline, initialize_pipeline

        skip_cpu_shm_comm_build()
        deepspeed.init_distributed()  # adopts the existing torch.distributed world; PipelineModule needs it

        model_config, train = config.model, config.train
        self.layout, self.device = layout, groups.device()
        ctx = TensorParallelContext.current(config.parallel.sequence_parallel, model_config.init_std,
                                            model_config.num_layers)
        self.cp = ctx.cp
        self.loss_weights = None if loss_weights is None else loss_weights.to(self.device)
        self.task, self.seed = task_for(config), train.seed
        from megatron.core import parallel_state

        self.replica = parallel_state.get_data_parallel_rank()
        self.labels_carry_last_frame = layout.pp > 1 and model_config.head == "residual"
        if layout.pp > 1:
            module = build_pipeline(model_config, frame_shape, config.data.t_out, ctx, layout.pp,
                                    layout.gradient_replicas, self.loss_weights)
            initialize_pipeline(module, model_config.num_layers, train.seed, ctx)
        else:
            module = self.task.build(frame_shape, ctx)
            initialize_parameters(module, train.seed, ctx.tp, ctx.rank)
        if config.parallel.activation_checkpointing:
            recompute_blocks(module)
        mark_norm_owners(module, ctx.rank)
        self.schedule = WarmupCosine(train.lr, train.min_lr, train.warmup_steps, train.steps)
        self.engine, *_ = deepspeed.initialize(
            model=module, model_parameters=parameter_groups(module, train.weight_decay),
            config=deepspeed_config(train, layout), mpu=None if layout.pp > 1 else mpu,
            lr_scheduler=lambda optimizer: warmup_cosine(optimizer, self.schedule),
        )
        keep_fp32_grad_norm(self.engine)

    @property
    def lr(self) -> float:
        return self.engine.get_lr()[0]

    def grad_norm(self) -> float | None:
        norm = self.engine.get_global_grad_norm()
        return None if norm is None else float(norm)

    def train_step(self, micro_batches: Sequence[Batch]) -> float:
        """One optimizer step over this rank's micro-batches; returns the global batch's mean loss."""
        if self.layout.pp > 1:
            return float(self.engine.train_batch(data_iter=iter(self._on_device(micro_batches))))
        losses = []
        step = self.engine.global_steps
        for micro, (x, y) in enumerate(self._on_device(micro_batches)):
            loss = self.task.loss(self.engine, x, y, self.cp, self.loss_weights, self._generator(step, micro))
            self.engine.backward(loss)
            self.engine.step()
            losses.append(loss.detach())
        return self._data_parallel_mean(losses)

    @torch.no_grad()
    def evaluate(self, batches: Sequence[Batch]) -> float:
        if self.layout.pp > 1:
            loss = self.engine.eval_batch(iter(self._on_device(batches)), num_micro_batches=len(batches))
            return float(loss)
        self.engine.eval()
        losses = [self.task.loss(self.engine, x, y, self.cp, self.loss_weights, self._generator(-1, micro))
                  for micro, (x, y) in enumerate(self._on_device(batches))]
        self.engine.train()
        return self._data_parallel_mean(losses)

    def _generator(self, step: int, micro: int) -> torch.Generator:
        """The task's randomness for one micro-batch (a diffusion task's noise): a function of (seed, step,
        data-parallel replica, micro-batch), so a resumed run draws what the uninterrupted one drew and the TP, CP
        and PP ranks of one replica draw alike. Evaluation (step -1) draws the same every time."""
        entropy = [self.seed, step + 1, self.replica, micro]
        return torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))

    def _on_device(self, batches: Sequence[Batch]) -> list[Batch]:
        """(frames, labels) on this rank's device, frames in the model's precision (a bf16 engine's first layer
        multiplies bf16 weights; labels stay fp32). A pipelined residual head sees only hidden states, so its labels
        carry the last input frame to the last stage's loss."""
        dtype = torch.bfloat16 if self.engine.bfloat16_enabled() else None
        if self.labels_carry_last_frame:
            return [(x.to(self.device, dtype), (y.to(self.device), x[:, -1:].to(self.device))) for x, y in batches]
        return [(x.to(self.device, dtype), y.to(self.device)) for x, y in batches]

    def _data_parallel_mean(self, losses: list[torch.Tensor]) -> float:
        """The batch's mean loss: the average over DP×CP ranks of `context_parallel_loss`'s values."""
        mean = torch.stack(losses).float().mean()
        dist.all_reduce(mean, group=mpu.get_data_parallel_group())
        return float(mean) / self.layout.gradient_replicas


def keep_fp32_grad_norm(engine: Any) -> None:
    """DeepSpeed's plain fp32 path (no ZeRO, no bf16) clips with the global norm and then discards it; keep it
    so every layout reports `grad_norm`."""
    from deepspeed.runtime.utils import clip_grad_norm_

    def clip() -> None:
        norm = clip_grad_norm_(engine.module.parameters(), max_norm=engine.gradient_clipping(), mpu=engine.mpu)
        engine._global_grad_norm = float(norm)

    engine.clip_fp32_gradients = clip
