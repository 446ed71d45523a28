"""`megageo bench context`: train-step time and per-rank peak memory of whole forecasters under context
parallelism, CP = 1, 2, 4 ranks on this machine, over sequence lengths up to 131K+ frames.

Each (mixer, frames, CP) case is a fresh group of CP processes joined over gloo, as a launcher would start them:
each rank builds the forecaster, holds only its block of random frames (timing does not depend on their values),
and runs warm-up and timed training steps — forward, backward, the gradient all-reduce over the CP group that
DeepSpeed performs over DP×CP, and an AdamW step. Per rank it records the resident memory after set-up (Python,
torch, the model and its optimizer), the bytes of its input frames, and the peak resident set of the step, so the
table shows where the memory went. A case does not fit when its ranks together hold more than the memory this
machine had available when the case started: the parent watches their resident sets and stops them there, so a
too-long case is reported (`oom`, with the numbers) instead of waking the kernel's OOM killer on a shared machine.

The ranks run with glibc's mmap threshold pinned (`MALLOC_MMAP_THRESHOLD_`, 1 MiB): by default glibc raises it
after large frees, so later large tensors come from a heap it never returns to the system, and the peak resident
set then measures that retained heap (at 16K frames of the tiny GLA, 2.34 GB instead of the 1.56 GB the tensors
need). Pinned, tensors are mapped and unmapped, and the peak is what the rank holds; the page faults cost time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from megageo.bench.models import OOM, model_label
from megageo.errors import MegageoError
from megageo.io.atomic import write_text


MMAP_THRESHOLD = 1 << 20


@dataclass
class ContextCase:
    mixer: str
    config: str
    frames: int
    cp: int
    tokens_per_frame: int = 1
    """Positions of the backbone per frame: 1 for a frame model, the patches of a frame for a token model."""
    status: str = "ok"
    step_s: list[float] = field(default_factory=list)
    """Seconds of each timed step (the slowest rank's: every step ends in collectives)."""
    setup_gb: list[float] = field(default_factory=list)
    frames_gb: float = 0.0
    peak_gb: list[float] = field(default_factory=list)
    """Per rank: resident memory after set-up, and the peak resident set."""
    error: str = ""

    @property
    def median_step_s(self) -> float:
        return sorted(self.step_s)[len(self.step_s) // 2]

    @property
    def ms_per_1k_frames(self) -> float:
        return 1e6 * self.median_step_s / self.frames

    @property
    def tokens(self) -> int:
        return self.frames * self.tokens_per_frame

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.median_step_s

    @property
    def max_peak_gb(self) -> float:
        return max(self.peak_gb)


def _rank_main(rank: int, cp: int, port: int, case: ContextCase, frame: tuple[int, int, int], steps: int,
               threads: int, overrides: list[str], results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(cp))
    import torch
    import torch.distributed as dist

    from megageo.config import load_config
    from megageo.model.block import recompute_blocks
    from megageo.model.forecaster import Forecaster, context_parallel_loss
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel import groups
    from megageo.train.metrics_log import peak_memory_gb, resident_memory_gb

    torch.set_num_threads(threads)
    groups.initialize(context_parallel=cp)
    config = load_config(case.config, ["data.t_out=1", f"data.t_in={case.frames}",
                                       f"parallel.context_parallel={cp}", *overrides])
    ctx = TensorParallelContext.current(False, config.model.init_std, config.model.num_layers)
    model = Forecaster(config.model, frame, 1, ctx)
    initialize_parameters(model, seed=0, tp=1, rank=0)
    if config.parallel.activation_checkpointing:
        recompute_blocks(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    setup_gb = resident_memory_gb()
    generator = torch.Generator().manual_seed(rank)
    frames_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[config.data.frames_dtype]
    block = torch.randn(1, case.frames // cp, *frame, generator=generator).to(frames_dtype)
    target = torch.randn(1, 1 if ctx.cp.is_last else 0, *frame, generator=generator)

    def train_step() -> float:
        dist.barrier(group=ctx.cp.group)
        start = time.perf_counter()
        context_parallel_loss(model(block), target, ctx.cp).backward()
        for param in model.parameters():
            dist.all_reduce(param.grad, group=ctx.cp.group)
            param.grad /= cp
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    train_step()
    times = [train_step() for _ in range(steps)]
    results.put((rank, times, setup_gb, block.nbytes / 1e9, peak_memory_gb()))
    groups.shutdown()


def run_case(case: ContextCase, frame: tuple[int, int, int], steps: int, threads: int, timeout_s: float,
             overrides: list[str]) -> ContextCase:
    """Start `case.cp` ranks, gather their measurements; a rank killed by signal 9 means out of memory."""
    from megageo.parallel.launch_env import free_port
    from megageo.train.metrics_log import resident_memory_gb

    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))  # read by each rank's C library at start
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_port()
    ranks = [context.Process(target=_rank_main, args=(rank, case.cp, port, case, frame, steps, threads, overrides,
                                                     results)) for rank in range(case.cp)]
    for process in ranks:
        process.start()
    reports, deadline, budget_gb = {}, time.monotonic() + timeout_s, available_memory_gb()
    try:
        while len(reports) < case.cp:
            held_gb = sum(resident_memory_gb(process.pid) for process in ranks)
            if held_gb > budget_gb:
                case.status = OOM
                case.error = f"its ranks held {held_gb:.1f} GB, more than the {budget_gb:.1f} GB available"
                return case
            try:
                rank, *report = results.get(timeout=0.5)
                reports[rank] = report
            except queue_module.Empty:
                dead = [p.exitcode for p in ranks if p.exitcode not in (None, 0)]
                if dead:
                    case.status = OOM if -9 in dead else "error"
                    case.error = f"a rank exited with code {dead[0]}"
                    return case
                if time.monotonic() > deadline:
                    case.status, case.error = "timeout", f"no result within {timeout_s:.0f} s"
                    return case
    finally:
        for process in ranks:
            if process.is_alive() and len(reports) < case.cp:
                process.kill()
            process.join(30)
    per_rank = [reports[rank] for rank in range(case.cp)]
    case.step_s = [max(times) for times in zip(*(report[0] for report in per_rank))]
    case.setup_gb = [report[1] for report in per_rank]
    case.frames_gb = per_rank[0][2]
    case.peak_gb = [report[3] for report in per_rank]
    return case


def available_memory_gb() -> float:
    """MemAvailable (Linux): what processes can still take without swapping or the OOM killer."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 / 1e9
    raise MegageoError("/proc/meminfo has no MemAvailable line: bench context needs Linux")


def run_bench(cases: list[ContextCase], frame: tuple[int, int, int], steps: int, threads: int, timeout_s: float,
              overrides: list[str], progress=None) -> list[ContextCase]:
    """Every case in turn; `threads` per rank, or 0 for this machine's cores shared among the case's ranks."""
    from megageo.config import load_config
    from megageo.model.tokens import tokens_per_frame

    for case in cases:  # every config, length and CP degree is checked before the first case starts
        config = load_config(case.config, [f"data.t_in={case.frames}", f"parallel.context_parallel={case.cp}",
                                           *overrides])
        case.tokens_per_frame = tokens_per_frame(config.model, frame)
    results = []
    for case in cases:
        case_threads = threads or max(1, (os.cpu_count() or 1) // case.cp)
        results.append(run_case(case, frame, steps, case_threads, timeout_s, overrides))
        if progress is not None:
            progress(results[-1])
    return results


def format_table(results: list[ContextCase]) -> str:
    header = (f"{'mixer':<22}{'frames':>9}{'tokens':>11}{'CP':>4}{'step s':>9}{'ms/1K fr':>10}{'tokens/s':>10}"
              f"{'setup GB':>10}{'frames GB':>11}{'peak GB/rank (max)':>20}  status")
    lines = [header, "-" * len(header)]
    for case in results:
        where = f"{case.mixer:<22}{case.frames:>9,d}{case.tokens:>11,d}{case.cp:>4}"
        if case.status != "ok":
            lines.append(f"{where}{'':>79}  {case.status}: {case.error}")
            continue
        lines.append(f"{where}{case.median_step_s:>9.2f}{case.ms_per_1k_frames:>10.1f}{case.tokens_per_s:>10,.0f}"
                     f"{max(case.setup_gb):>10.2f}{case.frames_gb:>11.2f}{case.max_peak_gb:>20.2f}  ok")
    return "\n".join(lines)


RATIO_FRAMES = 32768
"""Where the memory ratio is read when measured (the issue's goal: CP=4 at most 0.35x CP=1 at 32K frames)."""


def summary_lines(results: list[ContextCase]) -> list[str]:
    """Per mixer, the per-rank memory ratio of the largest CP degree to CP=1 (at 32,768 frames when measured, else at
    the longest length measured at both), and how flat the time per 1K frames stays over the lengths."""
    ok = {(case.mixer, case.frames, case.cp): case for case in results if case.status == "ok"}
    lines = []
    for mixer in dict.fromkeys(case.mixer for case in results):
        degrees = sorted({cp for (name, _, cp) in ok if name == mixer})
        shared = sorted(frames for (name, frames, cp) in ok
                        if name == mixer and cp == 1 and len(degrees) > 1 and (mixer, frames, degrees[-1]) in ok)
        if degrees[:1] == [1] and shared:
            at = RATIO_FRAMES if RATIO_FRAMES in shared else shared[-1]
            one, many = ok[mixer, at, 1], ok[mixer, at, degrees[-1]]
            lines.append(f"{mixer}: per-rank peak memory CP={degrees[-1]} / CP=1 at {at:,d} frames = "
                         f"{many.max_peak_gb:.2f} / {one.max_peak_gb:.2f} GB = {many.max_peak_gb / one.max_peak_gb:.2f}")
        for cp in sorted({cp for (name, _, cp) in ok if name == mixer}):
            lengths = sorted(frames for (name, frames, degree) in ok if name == mixer and degree == cp)
            if len(lengths) > 1:
                per_1k = [ok[mixer, frames, cp].ms_per_1k_frames for frames in lengths]
                lines.append(f"{mixer} CP={cp}: ms per 1K frames from {lengths[0]:,d} to {lengths[-1]:,d} frames: "
                             f"{' → '.join(f'{t:.0f}' for t in per_1k)} (max/min ×{max(per_1k) / min(per_1k):.2f})")
    return lines


def write_results(results: list[ContextCase], out_dir: Path) -> Path:
    return write_text(out_dir / "bench_context.json", json.dumps(
        [{**asdict(case), "tokens": case.tokens,
          "ms_per_1k_frames": case.ms_per_1k_frames if case.status == "ok" else None,
          "tokens_per_s": case.tokens_per_s if case.status == "ok" else None}
         for case in results], indent=2))


def parse_cases(configs: list[str], lengths: list[int], degrees: list[int]) -> list[ContextCase]:
    from megageo.config import load_config

    if not configs or not lengths or not degrees:
        raise MegageoError("bench context needs at least one config, one length and one CP degree")
    return [ContextCase(model_label(load_config(path).model), str(path), frames, cp)
            for path in configs for frames in lengths for cp in degrees]

