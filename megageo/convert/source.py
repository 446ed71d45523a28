"""A megageo DeepSpeed checkpoint on disk: where its tag folder is, what `megageo.json` says, which files it needs.

Every check that can fail (not a megageo checkpoint, a missing shard) runs here, before any tensor is read,
so a conversion of bad input fails at once and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from megageo.config import Config, config_from_dict
from megageo.errors import MegageoError
from megageo.train.checkpoint import LATEST, METADATA, format_layout
from megageo.train.engine import Layout


@dataclass(frozen=True)
class SourceCheckpoint:
    tag_dir: Path
    metadata: dict[str, Any]
    config: Config
    layout: Layout
    frame_shape: tuple[int, int, int]

    @property
    def step(self) -> int:
        return int(self.metadata["step"])

    def model_states(self, mp_rank: int, dp_rank: int = 0) -> Path:
        """The file holding this model-parallel rank's engine state (and, without ZeRO-3, its module)."""
        prefix = f"zero_pp_rank_{dp_rank}_" if self.layout.zero_stage == 3 else ""
        return self.tag_dir / f"{prefix}mp_rank_{mp_rank:02d}_model_states.pt"

    @cached_property
    def bf16(self) -> bool:
        """Whether a bf16 engine wrote it: DeepSpeed then names its ZeRO optimizer files `bf16_zero_pp_rank_*`. The
        config says so unless its precision is `auto` (bf16 where training ran on CUDA); then the files do."""
        precision = self.config.train.precision
        if precision != "auto":
            return precision == "bf16"
        return any(self.tag_dir.glob("bf16_zero_pp_rank_*_optim_states.pt"))

    def optim_states(self, mp_rank: int, dp_rank: int) -> Path:
        prefix = "bf16_" if self.bf16 else ""
        return self.tag_dir / f"{prefix}zero_pp_rank_{dp_rank}_mp_rank_{mp_rank:02d}_optim_states.pt"

    def layer_states(self, layer: int, tp_rank: int) -> Path:
        return self.tag_dir / f"layer_{layer:02d}-model_{tp_rank:02d}-model_states.pt"

    def expected_files(self, num_pipeline_layers: int) -> list[Path]:
        """DeepSpeed's files for this layout. Pipeline ranks are numbered stage-major (`stage · tp + tp_rank`); the
        ZeRO shards are numbered over DP×CP ranks, which DeepSpeed sees as its data-parallel group."""
        layout = self.layout
        model_parallel = range(layout.tp * layout.pp)
        dp_ranks = range(layout.gradient_replicas) if layout.zero_stage == 3 else range(1)
        files = [self.model_states(mp, dp) for mp in model_parallel for dp in dp_ranks]
        if layout.zero_stage > 0:
            files += [self.optim_states(mp, dp) for mp in model_parallel for dp in range(layout.gradient_replicas)]
        if layout.pp > 1:
            files += [self.layer_states(layer, tp) for layer in range(num_pipeline_layers) for tp in range(layout.tp)]
        return files


def open_checkpoint(path: str | Path) -> SourceCheckpoint:
    """`path` is a run directory (`train.out_dir`), its `checkpoints` folder (holding `latest`), or a tag folder."""
    tag_dir = find_tag_dir(Path(path))
    metadata_path = tag_dir / METADATA
    if not metadata_path.is_file():
        raise MegageoError(f"{tag_dir}: not a megageo checkpoint (no {METADATA})")
    try:
        metadata = json.loads(metadata_path.read_text())
        layout = Layout(**{key: int(value) for key, value in {"cp": 1, **metadata["layout"]}.items()})
        config = config_from_dict(metadata["config"])
        int(metadata["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise MegageoError(f"{metadata_path}: not a megageo checkpoint's metadata ({error!r})") from None
    source = SourceCheckpoint(tag_dir, metadata, config, layout, frame_shape_of(metadata, metadata_path))
    missing = [file.name for file in source.expected_files(config.model.num_layers + 2) if not file.is_file()]
    if missing:
        raise MegageoError(
            f"{tag_dir}: missing shard {missing[0]} ({len(missing)} of the files a {format_layout(layout.as_dict())} "
            "checkpoint needs are absent)"
        )
    return source


def find_tag_dir(path: Path) -> Path:
    if not path.is_dir():
        raise MegageoError(f"{path}: no such checkpoint folder")
    if (path / METADATA).is_file():
        return path
    for folder in (path, path / "checkpoints"):
        if (folder / LATEST).is_file():
            return folder / (folder / LATEST).read_text().strip()
    raise MegageoError(f"{path}: not a megageo checkpoint (no '{LATEST}' file here or in {path / 'checkpoints'})")


def frame_shape_of(metadata: dict[str, Any], where: Path) -> tuple[int, int, int]:
    """[C, H, W] of a frame: recorded by `train`, or (older checkpoints) read from the store it trained on."""
    if "frame_shape" in metadata:
        return tuple(int(size) for size in metadata["frame_shape"])
    normalization = metadata.get("normalization", {})
    store = Path(normalization.get("store", ""))
    if not store.is_file():
        raise MegageoError(f"{where}: no frame_shape recorded and the store {store} is not here to read it from")
    from megageo.data.store import Store

    return (len(normalization["levels"]), *Store(store).shape[2:])

