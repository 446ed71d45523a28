"""`megageo convert inspect`: what a checkpoint holds, per tensor, without consolidating anything.

Each tensor line shows the full shape, the shape every rank holds at this layout, the dtype the module was
saved in, and the TP partition declared next to its module (or `replicated`).
"""

from __future__ import annotations

import json

from megageo.convert.layout import ModelLayout, ParameterSpec
from megageo.convert.shards import load
from megageo.convert.source import SourceCheckpoint
from megageo.train.checkpoint import format_layout


def describe(source: SourceCheckpoint, layout: ModelLayout) -> str:
    tp = source.layout.tp
    dtype = saved_dtype(source)
    lines = [
        f"checkpoint {source.tag_dir}",
        f"step       {source.step}",
        f"layout     {format_layout(source.layout.as_dict())}",
        f"frame      {list(source.frame_shape)} (C, H, W)",
        f"tensors    {len(layout.params)} ({sum(spec.shape.numel() for spec in layout.params.values()):,d} values)",
    ]
    width = max(len(name) for name in layout.params)
    for name, spec in layout.params.items():
        full, local = str(list(spec.shape)), str(local_shape(spec, tp))
        lines.append(f"  {name:<{width}}  {full:<11} per rank {local:<11} {dtype}  {spec.describe()}")
    lines += ["config", json.dumps(source.config.to_dict(), indent=1)]
    return "\n".join(lines)


def local_shape(spec: ParameterSpec, tp: int) -> list[int]:
    shape = list(spec.shape)
    if spec.partition is not None:
        shape[spec.partition.dim] //= tp
    return shape


def saved_dtype(source: SourceCheckpoint) -> str:
    """The module's dtype, from the DeepSpeed config saved with it (bf16 runs keep fp32 masters in the optimizer)."""
    ds_config = load(source.model_states(0))["ds_config"]
    return "bf16" if ds_config.get("bf16", {}).get("enabled") else "fp32"
