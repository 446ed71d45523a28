"""The tensors of one model-parallel rank, read from DeepSpeed's files and named by their `Forecaster` names.

Where the fp32 master weights live depends on the ZeRO stage: in the module itself without ZeRO (fp32
training), and in the optimizer's flat partitions across DP ranks with ZeRO 1-3. The flat partitions of
Adam's moments are laid out exactly like the weights', so DeepSpeed's own `zero_to_fp32` merge functions
recover all three, one flat group at a time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from megageo.convert.layout import ModelLayout
from megageo.convert.source import SourceCheckpoint
from megageo.errors import MegageoError

MOMENTS = ("exp_avg", "exp_avg_sq")


@dataclass
class RankTensors:
    weights: dict[str, torch.Tensor]
    moments: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Adam state key → name → tensor (read only when the optimizer state is wanted)."""
    adam_step: int = 0


def load(path: Any) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def read_rank(source: SourceCheckpoint, layout: ModelLayout, stage: int, tp_rank: int, moments: bool) -> RankTensors:
    mp_rank = stage * source.layout.tp + tp_rank
    if source.layout.zero_stage == 0:
        return _read_plain(source, layout, stage, tp_rank, mp_rank, moments)
    return _read_zero(source, layout, mp_rank, moments)


def _read_plain(
    source: SourceCheckpoint, layout: ModelLayout, stage: int, tp_rank: int, mp_rank: int, moments: bool,
) -> RankTensors:
    """No ZeRO: weights in the module (or, pipelined, one file per layer) and a plain torch optimizer state. A bf16
    engine keeps bf16 copies in the module and the fp32 masters, in optimizer order, in its optimizer's
    `fp32_groups` (DeepSpeed's FP16_UnfusedOptimizer), whose wrapped torch optimizer holds Adam's state."""
    states = load(source.model_states(mp_rank))
    pipelined = source.layout.pp > 1
    layers = layout.stage_layers(source.layout.pp)[stage] if pipelined else None
    if pipelined:
        module = {f"{layer}.{name}": tensor for layer in layers
                  for name, tensor in load(source.layer_states(layer, tp_rank)).items()}
    else:
        module = states["module"]
    weights = {layout.full_name(name, pipelined): t for name, t in module.items() if isinstance(t, torch.Tensor)}
    names = layout.optimizer_order(layers)
    optimizer = states["optimizer"]
    masters = optimizer.get("fp32_groups")
    if masters is not None:
        weights = _masters_by_name(names, [tensor for group in masters for tensor in group], weights, source)
        optimizer = optimizer["optimizer_state_dict"]
    if not moments:
        return RankTensors(weights)
    state = optimizer["state"]
    per_key = {key: {name: state[index][key] for index, name in enumerate(names)} for key in MOMENTS}
    return RankTensors(weights, per_key, int(state[0]["step"]))


def _masters_by_name(names: list[str], masters: list[torch.Tensor], module: dict[str, torch.Tensor],
                     source: SourceCheckpoint) -> dict[str, torch.Tensor]:
    """The fp32 masters named in optimizer order, each checked against its module copy's shape."""
    if len(masters) != len(names) or any(m.shape != module[n].shape for n, m in zip(names, masters)):
        raise MegageoError(f"{source.tag_dir}: the optimizer's fp32 master weights do not match the module's parameters")
    return dict(zip(names, masters))


def _read_zero(source: SourceCheckpoint, layout: ModelLayout, mp_rank: int, moments: bool) -> RankTensors:
    from deepspeed.checkpoint import constants

    zero3 = source.layout.zero_stage == 3
    dp_ranks = range(source.layout.gradient_replicas)
    model_files = [source.model_states(mp_rank, dp) for dp in (dp_ranks if zero3 else range(1))]
    optimizer = [load(source.optim_states(mp_rank, dp))[constants.OPTIMIZER_STATE_DICT] for dp in dp_ranks]
    fp32_key = constants.FP32_FLAT_GROUPS if zero3 else constants.SINGLE_PARTITION_OF_FP32_GROUPS
    inner = constants.OPTIMIZER_STATE_DICT if zero3 else constants.BASE_OPTIMIZER_STATE
    pipelined = source.layout.pp > 1
    model_states = [_model_state(load(file)) for file in model_files]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # narrated merges
        merge = _zero3_merge if zero3 else _zero2_merge(optimizer[0].get(constants.PARAM_ALIGNMENT_PADDINGS))

        def merged(flat_groups: list) -> dict[str, torch.Tensor]:
            tensors = merge(source.layout.gradient_replicas, flat_groups, model_states)
            return {layout.full_name(name, pipelined): tensor for name, tensor in tensors.items()}

        weights = merged([partition[fp32_key] for partition in optimizer])
        if not moments:
            return RankTensors(weights)
        flat_state = [partition[inner]["state"] for partition in optimizer]
        per_key = {key: merged([[s[group][key] for group in sorted(s)] for s in flat_state]) for key in MOMENTS}
    return RankTensors(weights, per_key, int(flat_state[0][0]["step"]))


def _model_state(states: dict[str, Any]) -> Any:
    """What the merge functions need from a model-states file. (`zero_to_fp32.parse_model_states` would also
    read buffers from the module, which a pipelined checkpoint keeps in per-layer files; megageo has none.)"""
    from deepspeed.checkpoint import constants
    from deepspeed.utils import zero_to_fp32

    return zero_to_fp32.zero_model_state(
        buffers={}, param_shapes=states[constants.PARAM_SHAPES], shared_params=[],
        ds_version=states.get(constants.DS_VERSION), frozen_param_shapes=None, frozen_param_fragments=None,
    )


Merge = Callable[[int, list, list], dict[str, torch.Tensor]]


def _zero2_merge(alignment_paddings: list | None) -> Merge:
    from deepspeed.utils import zero_to_fp32

    return lambda dp, groups, states: dict(
        zero_to_fp32._get_fp32_state_dict_from_zero2_checkpoint(dp, groups, states, False, alignment_paddings)
    )


def _zero3_merge(dp: int, groups: list, states: list) -> dict[str, torch.Tensor]:
    from deepspeed.utils import zero_to_fp32

    lazy = zero_to_fp32._get_fp32_state_dict_from_zero3_checkpoint(dp, groups, states, False)
    return zero_to_fp32.to_torch_tensor(lazy)
