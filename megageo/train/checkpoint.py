"""Checkpoints in DeepSpeed's format, published atomically, with the metadata the conversion tools need.

A save writes tag `step{N:08d}` on every rank, then rank 0 writes `megageo.json` into it (layout, config, step,
normalisation statistics). Only after a barrier, once every rank has finished, does rank 0 point `latest` at
the new tag, by writing a temporary file and renaming it over the old one. An interrupted save therefore
leaves `latest` on the previous, complete checkpoint; the half-written tag is deleted by the next save. A save
that fails on any rank (disk full) fails on all of them with one error, so no rank waits at the barrier.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch.distributed as dist

from megageo.errors import MegageoError
from megageo.io.atomic import write_text
from megageo.parallel import groups

LATEST = "latest"
METADATA = "megageo.json"
TAG = re.compile(r"step(\d{8})")


def tag_of(step: int) -> str:
    return f"step{step:08d}"


class Checkpoints:
    def __init__(self, directory: str | Path, keep_last: int, is_writer: bool):
        self.directory = Path(directory)
        self.keep_last = max(1, keep_last)
        self.is_writer = is_writer

    def latest_tag(self) -> str | None:
        path = self.directory / LATEST
        return path.read_text().strip() if path.is_file() else None

    def metadata(self, tag: str) -> dict[str, Any]:
        path = self.directory / tag / METADATA
        if not path.is_file():
            raise MegageoError(f"{path.parent}: not a megageo checkpoint (no {METADATA})")
        return json.loads(path.read_text())

    def save(self, engine: Any, step: int, metadata: dict[str, Any]) -> None:
        tag = tag_of(step)
        problem = None
        try:
            engine.save_checkpoint(str(self.directory), tag=tag, save_latest=False)
            if self.is_writer:
                write_text(self.directory / tag / METADATA, json.dumps({"step": step, **metadata}, indent=1))
        except (OSError, RuntimeError, MegageoError) as error:  # disk full, quota, unwritable folder
            # torch.save reports a refused write as a RuntimeError of its zip writer ("unexpected pos ...")
            problem = getattr(error, "strerror", None) or str(error).splitlines()[0]
        if groups.any_rank(problem is not None):  # every rank learns it, so none waits for one that gave up
            previous = self.latest_tag()
            kept = f"'{LATEST}' still names {previous}" if previous else f"no '{LATEST}' was written"
            free = shutil.disk_usage(self.directory).free / 1e9
            reason = f"this rank: {problem}" if problem else "another rank failed"
            raise MegageoError(f"checkpoint {self.directory / tag} could not be written ({reason}; "
                               f"{free:.1f} GB free there); {kept}")
        if self.is_writer:
            write_text(self.directory / LATEST, tag)
            self._prune(step)
        dist.barrier()

    def load(self, engine: Any, layout: dict[str, int]) -> int:
        """Restore the `latest` checkpoint into the engine; returns its step. Refuses a different layout."""
        tag = self.latest_tag()
        if tag is None:
            raise MegageoError(f"--resume: no checkpoint in {self.directory} (no '{LATEST}' file)")
        saved = self.metadata(tag)
        saved_layout = {key: saved["layout"].get(key, 1) for key in layout}  # no "cp": written before CP, so CP=1
        if saved_layout != layout:
            raise MegageoError(
                f"checkpoint {self.directory / tag} was written with layout {format_layout(saved_layout)}, "
                f"this run has {format_layout(layout)}; resume with the same layout, or convert the checkpoint "
                f"first: megageo convert reshard {self.directory} NEW_DIR --tp {layout['tp']} --cp {layout['cp']} "
                f"--pp {layout['pp']} --dp {layout['dp']}"
            )
        path, _ = engine.load_checkpoint(str(self.directory), tag=tag)
        if path is None:
            raise MegageoError(f"DeepSpeed could not load checkpoint {self.directory / tag}")
        return int(saved["step"])

    def _prune(self, latest_step: int) -> None:
        """Keep the newest `keep_last` published tags; anything newer than `latest` is a failed save."""
        steps = sorted(
            int(match.group(1)) for entry in self.directory.iterdir() if (match := TAG.fullmatch(entry.name))
        )
        published = [step for step in steps if step <= latest_step]
        keep = set(published[-self.keep_last :])
        for step in steps:
            if step not in keep:
                shutil.rmtree(self.directory / tag_of(step), ignore_errors=True)


def format_layout(layout: dict[str, int]) -> str:
    return ", ".join(f"{key}={value}" for key, value in layout.items())
