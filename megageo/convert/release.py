"""Release checkpoints: full weights, the config, the normalisation statistics and the step, for one CPU.

A release is either a consolidated `.safetensors` file (metadata as JSON strings in its header) or any megageo
DeepSpeed checkpoint, consolidated in memory by one process without torch.distributed. `megageo eval` and
`megageo forecast` load both through `load_release` and run the model `build_model` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from megageo.config import Config, config_from_dict
from megageo.convert.full_state import consolidate
from megageo.convert.layout import ModelLayout
from megageo.convert.source import open_checkpoint
from megageo.errors import MegageoError
from megageo.io.atomic import atomic_path

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class ReleaseCheckpoint:
    state_dict: dict[str, torch.Tensor]
    """Full (unsharded) tensors keyed by the model's parameter names (`Forecaster`'s for a forecast task)."""
    config: Config
    stats: dict[str, Any]
    """The store's normalisation statistics as training recorded them (levels, mean and std per level, store)."""
    step: int
    frame_shape: tuple[int, int, int]
    """[C, H, W] of one frame: the model's output shape, which its weights alone do not pin down."""
    source_layout: dict[str, int]


def load_release(path: str | Path) -> ReleaseCheckpoint:
    """A `.safetensors` release, or a DeepSpeed checkpoint (run, checkpoints or tag folder) consolidated here."""
    path = Path(path)
    if path.is_file():
        return _read_safetensors(path)
    source = open_checkpoint(path)
    state = consolidate(source, ModelLayout(source.config, source.frame_shape))
    return ReleaseCheckpoint(state.weights, source.config, source.metadata.get("normalization", {}), source.step,
                             source.frame_shape, source.layout.as_dict())


def build_model(release: ReleaseCheckpoint) -> torch.nn.Module:
    """The TP=1 model of the release's task (a forecaster, a denoiser) on CPU in eval mode with the release's weights loaded strictly; sets up the
    single-process group its Megatron layers need if none exists yet."""
    from megatron.core import parallel_state

    from megageo.parallel import groups
    from megageo.train.tasks import unsharded_model

    if not parallel_state.model_parallel_is_initialized():
        groups.initialize_single_process()
    model = unsharded_model(release.config, release.frame_shape)
    # Megatron's linears carry an `_extra_state` entry (always None here) that a strict load insists on.
    extra = {name: value for name, value in model.state_dict().items() if name.endswith("_extra_state")}
    dtype = next(iter(model.parameters())).dtype
    weights = {name: tensor.to(dtype) for name, tensor in release.state_dict.items()}
    try:
        model.load_state_dict({**weights, **extra}, strict=True)
    except RuntimeError as error:
        raise MegageoError(f"the release's weights do not fit its config: {str(error).splitlines()[0]}") from None
    return model.eval()


def save_release(release: ReleaseCheckpoint, out: str | Path, dtype: str = "fp32") -> Path:
    """Write the release as one safetensors file, atomically (a temporary file renamed into place)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    out = Path(out)
    tensors = {name: tensor.to(DTYPES[dtype]).contiguous() for name, tensor in release.state_dict.items()}
    metadata = {
        "format": "megageo-release", "step": str(release.step), "config": json.dumps(release.config.to_dict()),
        "stats": json.dumps(release.stats), "frame_shape": json.dumps(list(release.frame_shape)),
        "source_layout": json.dumps(release.source_layout), "dtype": dtype,
    }
    with atomic_path(out, writer_errors=(SafetensorError,)) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return out


def _read_safetensors(path: Path) -> ReleaseCheckpoint:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != "megageo-release":
                raise MegageoError(f"{path}: not a megageo release (no megageo metadata in its safetensors header)")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as error:
        raise MegageoError(f"{path}: not a safetensors file ({error})") from None
    return ReleaseCheckpoint(
        tensors, config_from_dict(json.loads(metadata["config"])), json.loads(metadata["stats"]),
        int(metadata["step"]), tuple(json.loads(metadata["frame_shape"])), json.loads(metadata["source_layout"]),
    )
