"""Checkpoint conversion: DeepSpeed checkpoints of any TP/PP/DP/ZeRO layout ↔ full weights ↔ other layouts.

- `layout`: what every parameter looks like unsharded (shape, TP partition) and which pipeline layer holds it.
- `source`: find a checkpoint from a run, checkpoint or tag folder; read its metadata; check no shard is missing.
- `shards`: the tensors of one model-parallel rank, read from DeepSpeed's files for every ZeRO stage.
- `full_state`: all ranks stitched (PP) and unsharded (TP) into full weights and Adam moments.
- `release`: the one-file safetensors release and the model built from it (`load_release`, `build_model`).
- `reshard`: a full state written as a DeepSpeed checkpoint at another layout by that layout's own engine.
- `report`: the `inspect` listing. `commands`: `megageo convert ...`.
"""
