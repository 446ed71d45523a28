"""`inspect` lists the step, layout, config, and every tensor's full and per-rank shape, dtype and partition."""

from __future__ import annotations

import json

from runs import SAVED_AT


def test_inspect_a_tp2_checkpoint(capsys, tp2_run) -> None:
    from megageo.cli import main

    assert main(["convert", "inspect", str(tp2_run)]) == 0
    out = capsys.readouterr().out
    header, config = out.split("\nconfig\n")
    lines = header[header.index("checkpoint "):].splitlines()  # DeepSpeed may log a line to stdout on import
    assert lines[1:5] == [
        f"step       {SAVED_AT}", "layout     tp=2, cp=1, pp=1, dp=1, zero_stage=1", "frame      [1, 8, 16] (C, H, W)",
        "tensors    25 (71,664 values)",
    ]
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[5:]}
    assert len(rows) == 25
    assert " ".join(rows["blocks.0.mixer.in_proj.weight"].split()) == (
        "[96, 32] per rank [48, 32] fp32 split dim 0, segments [16, 16, 32, 32]"
    )
    assert rows["input.proj.weight"].endswith("fp32  split dim 1, segments [128]")
    assert rows["blocks.1.mixer.forget_down.weight"].split()[-2:] == ["fp32", "replicated"]
    assert json.loads(config)["parallel"]["tensor_parallel"] == 2
