"""`megageo bench models`: training throughput, achieved TFLOPS, peak memory and inference latency of whole
forecasters, several mixers side by side over sequence lengths (the seed paper's Fig. 6).

Each (mixer, length) case runs in a fresh process, so its peak memory is its own (CUDA max allocated on GPU, the
process's peak resident set on CPU) and a case that does not fit is reported as out-of-memory instead of taking
the whole benchmark down. TFLOPS come from the analytic FLOP count in `megageo.model.flops` (training = 3 ×
forward), not from a profiler.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from megageo.errors import MegageoError
from megageo.io.atomic import write_text

OOM = "oom"


@dataclass
class BenchCase:
    mixer: str
    config: str
    seq_len: int
    batch_size: int
    status: str = "ok"
    tokens_per_s: float = 0.0
    tflops: float = 0.0
    peak_mem_gb: float = 0.0
    latency_ms: float = 0.0
    """Inference latency per sample (forward only, no gradients)."""
    error: str = ""


def _timed(fn, repeats: int) -> float:
    """Mean seconds per call after one warm-up call, synchronising the GPU around the timed region."""
    import torch

    fn()
    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize()
    return (time.perf_counter() - start) / repeats


def measure(case: BenchCase, frame: tuple[int, int, int], steps: int, threads: int) -> BenchCase:
    """Build the forecaster of `case.config` at `case.seq_len` input frames and time it on this process's device."""
    import torch

    from megageo.config import load_config
    from megageo.model.forecaster import Forecaster, forecast_loss
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.model.summary import summarize
    from megageo.parallel import groups
    from megageo.train.metrics_log import peak_memory_gb

    torch.set_num_threads(threads)
    groups.initialize_single_process()
    config = load_config(case.config, ["data.t_out=1"]).model
    device = groups.device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ctx = TensorParallelContext.current(False, config.init_std, config.num_layers)
    model = Forecaster(config, frame, 1, ctx)
    initialize_parameters(model, seed=0, tp=1, rank=0)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames = torch.randn(case.batch_size, case.seq_len, *frame, device=device)
    target = torch.randn(case.batch_size, 1, *frame, device=device)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = forecast_loss(model(frames), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            model(frames)

    step_s = _timed(train_step, steps)
    case.peak_mem_gb = peak_memory_gb()
    case.latency_ms = 1e3 * _timed(infer, steps) / case.batch_size
    tokens = case.batch_size * case.seq_len
    case.tokens_per_s = tokens / step_s
    flops_per_token = 3 * summarize(config, frame, 1).flops_per_token(config, case.seq_len)
    case.tflops = flops_per_token * case.tokens_per_s / 1e12
    return case


def _measure_in_child(queue, case: BenchCase, frame, steps: int, threads: int) -> None:
    import torch

    try:
        queue.put(measure(case, frame, steps, threads))
    except torch.OutOfMemoryError as error:
        case.status, case.error = OOM, str(error).splitlines()[0]
        queue.put(case)
    except RuntimeError as error:
        out_of_memory = "can't allocate memory" in str(error) or "out of memory" in str(error)
        case.status, case.error = (OOM if out_of_memory else "error"), str(error).splitlines()[0]
        queue.put(case)


def run_case(case: BenchCase, frame: tuple[int, int, int], steps: int, threads: int, timeout_s: float) -> BenchCase:
    """One case in a fresh process; killed by the kernel (SIGKILL from the OOM killer) counts as out-of-memory."""
    context = multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    process = context.Process(target=_measure_in_child, args=(queue, case, frame, steps, threads))
    process.start()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join()
        case.status, case.error = "timeout", f"no result within {timeout_s:.0f} s"
        return case
    if not queue.empty():
        return queue.get()
    case.status = OOM if process.exitcode == -9 else "error"
    case.error = f"benchmark process exited with code {process.exitcode}"
    return case


def run_bench(
    configs: list[str], seq_lens: list[int], batch_size: int, frame: tuple[int, int, int], steps: int,
    threads: int, timeout_s: float, progress=None,
) -> list[BenchCase]:
    from megageo.config import load_config

    mixers = {path: load_config(path).model.mixer.type for path in configs}  # fail on a bad config before timing
    results = []
    for path, mixer in mixers.items():
        for seq_len in seq_lens:
            results.append(run_case(BenchCase(mixer, str(path), seq_len, batch_size), frame, steps, threads, timeout_s))
            if progress is not None:
                progress(results[-1])
    return results


def format_table(results: list[BenchCase]) -> str:
    header = f"{'mixer':<16}{'seq':>8}{'tokens/s':>12}{'TFLOPS':>10}{'peak GB':>10}{'latency ms':>12}  status"
    lines = [header, "-" * len(header)]
    for case in results:
        lines.append(f"{case.mixer:<16}{case.seq_len:>8,d}{case.tokens_per_s:>12,.1f}{case.tflops:>10.4f}"
                     f"{case.peak_mem_gb:>10.2f}{case.latency_ms:>12.2f}  {case.status}")
    return "\n".join(lines)


def ratios_to_transformer(results: list[BenchCase]) -> list[str]:
    """Each mixer's throughput and memory against the Transformer at the longest length both completed."""
    ok = {(case.mixer, case.seq_len): case for case in results if case.status == "ok"}
    lines = []
    for mixer in dict.fromkeys(case.mixer for case in results):
        shared = [length for (name, length) in ok if name == mixer and ("transformer", length) in ok]
        if mixer == "transformer" or not shared:
            continue
        length = max(shared)
        mine, reference = ok[mixer, length], ok["transformer", length]
        lines.append(f"{mixer} vs transformer at {length:,d} frames: throughput ×{mine.tokens_per_s / reference.tokens_per_s:.2f}, "
                     f"peak memory ×{mine.peak_mem_gb / reference.peak_mem_gb:.2f}")
    return lines


def write_results(results: list[BenchCase], out_dir: Path) -> tuple[Path, Path]:
    from megageo.eval.plots import plot_bench

    out_dir.mkdir(parents=True, exist_ok=True)
    records = [asdict(case) for case in results]
    json_path = out_dir / "bench.json"
    write_text(json_path, json.dumps(records, indent=2))
    return json_path, plot_bench(records, out_dir / "bench.png")


def parse_frame(text: str) -> tuple[int, int, int]:
    try:
        channels, height, width = (int(value) for value in text.split(","))
    except ValueError:
        raise MegageoError(f"--frame must be C,H,W (three integers), got {text!r}") from None
    return channels, height, width
