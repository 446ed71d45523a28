"""`megageo bench models`: training throughput, achieved TFLOPS, peak memory and inference latency of whole
forecasters, several mixers side by side over sequence lengths (the seed paper's Fig. 6).

Each measurement runs in a fresh process, so its peak memory is its own (CUDA max allocated on GPU, the process's
peak resident set on CPU) and a case that does not fit is reported as out-of-memory instead of taking the whole
benchmark down. Timings on a shared machine drift with the load, so every case is measured in several rounds,
interleaved (one round runs every case once, length by length, mixers side by side; odd rounds in reverse order):
a ratio between two mixers is taken round by round from measurements minutes apart at most, and its spread over
the rounds is printed beside it. TFLOPS come from the analytic FLOP count in `megageo.model.flops` (training =
3 × forward), not from a profiler.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from megageo.errors import MegageoError
from megageo.io.atomic import write_text

OOM = "oom"


def model_label(model) -> str:
    """The mixer, and for a token model its patch and causality (`gla/p8 frame-causal`), so that a frame and a
    token model of one mixer are told apart in a table."""
    if model.tokens == "frame":
        return model.mixer.type
    return f"{model.mixer.type}/p{model.patch_size}" + (" frame-causal" if model.frame_causal else "")


@dataclass
class BenchCase:
    mixer: str
    config: str
    seq_len: int
    batch_size: int
    tokens_per_frame: int = 1
    """Backbone positions per frame (the patches of a frame for a token model): tokens/s counts them."""
    status: str = "ok"
    step_s: list[float] = field(default_factory=list)
    """Seconds per training step, one value per round (the mean of that round's timed steps)."""
    sample_s: list[float] = field(default_factory=list)
    """Seconds of inference (forward only, no gradients) per sample, one value per round."""
    flops_per_token: float = 0.0
    tokens_per_s: float = 0.0
    """From the median round's step time; so are the TFLOPS and the latency."""
    tflops: float = 0.0
    peak_mem_gb: float = 0.0
    """The largest peak over the rounds."""
    latency_ms: float = 0.0
    error: str = ""

    def absorb(self, measured: BenchCase) -> None:
        """Fold one round's measurement in; a round that failed (oom, timeout, error) ends the case."""
        if measured.status != "ok":
            self.status, self.error = measured.status, measured.error
            return
        self.step_s += measured.step_s
        self.sample_s += measured.sample_s
        self.flops_per_token = measured.flops_per_token
        self.peak_mem_gb = max(self.peak_mem_gb, measured.peak_mem_gb)
        self.tokens_per_s = self.batch_size * self.seq_len * self.tokens_per_frame / statistics.median(self.step_s)
        self.tflops = self.flops_per_token * self.tokens_per_s / 1e12
        self.latency_ms = 1e3 * statistics.median(self.sample_s)

    @property
    def spread(self) -> float:
        """Half the range of the rounds' step times, relative to their median: ±0.05 is ±5 %."""
        return (max(self.step_s) - min(self.step_s)) / (2 * statistics.median(self.step_s)) if self.step_s else 0.0


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


def build_steps(config_path: str, seq_len: int, batch_size: int, frame: tuple[int, int, int]):
    """The forecaster of `config_path` at `seq_len` input frames on this process's device (bf16 autocast on GPU),
    with one training step and one inference on random frames: `(model config, train_step, infer)`. Needs the
    process group of one (`groups.initialize_single_process`)."""
    import torch

    from megageo.config import load_config
    from megageo.model.forecaster import Forecaster, forecast_loss
    from megageo.model.init import initialize_parameters
    from megageo.model.parallel_layers import TensorParallelContext
    from megageo.parallel import groups

    config = load_config(config_path, ["data.t_out=1"]).model
    device = groups.device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    ctx = TensorParallelContext.current(False, config.init_std, config.num_layers)
    model = Forecaster(config, frame, 1, ctx)
    initialize_parameters(model, seed=0, tp=1, rank=0)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames = torch.randn(batch_size, seq_len, *frame, device=device)
    target = torch.randn(batch_size, 1, *frame, device=device)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = forecast_loss(model(frames), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            model(frames)

    return config, train_step, infer


def measure(case: BenchCase, frame: tuple[int, int, int], steps: int, threads: int) -> BenchCase:
    """One round of `case` in this process: mean step and inference times, peak memory, FLOPs per token."""
    import torch

    from megageo.model.forecaster import unsharded_forecaster
    from megageo.model.summary import summarize
    from megageo.parallel import groups
    from megageo.train.metrics_log import peak_memory_gb

    torch.set_num_threads(threads)
    groups.initialize_single_process()
    config, train_step, infer = build_steps(case.config, case.seq_len, case.batch_size, frame)
    case.step_s = [_timed(train_step, steps)]
    case.peak_mem_gb = peak_memory_gb()
    case.sample_s = [_timed(infer, steps) / case.batch_size]
    summary = summarize(unsharded_forecaster(config, frame, 1), config, frame)
    case.flops_per_token = 3 * summary.flops_per_token(config, case.seq_len * summary.tokens_per_frame)
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
    threads: int, timeout_s: float, rounds: int = 1, progress=None,
) -> list[BenchCase]:
    """Every (config, length) case measured `rounds` times, rounds interleaved (see the module's docstring)."""
    from megageo.config import load_config
    from megageo.model.tokens import tokens_per_frame

    if rounds < 1:
        raise MegageoError(f"--rounds must be at least 1, got {rounds}")
    models = {path: load_config(path).model for path in configs}  # fail on a bad config before timing
    mixers = {path: model_label(model) for path, model in models.items()}
    cases = [BenchCase(mixers[path], str(path), seq_len, batch_size, tokens_per_frame(models[path], frame))
             for seq_len in seq_lens for path in models]
    for round_index in range(rounds):
        for case in cases if round_index % 2 == 0 else cases[::-1]:
            if case.status != "ok":
                continue
            case.absorb(run_case(replace(case, step_s=[], sample_s=[]), frame, steps, threads, timeout_s))
            if progress is not None:
                progress(case, round_index)
    return sorted(cases, key=lambda case: (list(mixers.values()).index(case.mixer), case.seq_len))


def format_table(results: list[BenchCase]) -> str:
    header = (f"{'mixer':<22}{'frames':>8}{'tokens/s':>12}{'spread':>8}{'TFLOPS':>10}{'peak GB':>10}{'latency ms':>12}"
              "  status")
    lines = [header, "-" * len(header)]
    for case in results:
        lines.append(f"{case.mixer:<22}{case.seq_len:>8,d}{case.tokens_per_s:>12,.1f}{f'±{case.spread:.0%}':>8}"
                     f"{case.tflops:>10.4f}{case.peak_mem_gb:>10.2f}{case.latency_ms:>12.2f}  {case.status}")
    return "\n".join(lines)


def ratios_to_transformer(results: list[BenchCase]) -> list[str]:
    """Each mixer's throughput, latency and memory against the Transformer at the longest length both completed.
    Time ratios are taken round by round (the two measured close together) and given as the median with the
    range over the rounds."""
    ok = {(case.mixer, case.seq_len): case for case in results if case.status == "ok"}
    lines = []
    for mixer in dict.fromkeys(case.mixer for case in results):
        shared = [length for (name, length) in ok if name == mixer and ("transformer", length) in ok]
        if mixer == "transformer" or not shared:
            continue
        length = max(shared)
        mine, reference = ok[mixer, length], ok["transformer", length]

        def ratio(times: str) -> str:
            per_round = [theirs / ours for ours, theirs in zip(getattr(mine, times), getattr(reference, times))]
            if len(per_round) == 1:
                return f"×{per_round[0]:.2f} (1 round)"
            return (f"×{statistics.median(per_round):.2f} (×{min(per_round):.2f}–×{max(per_round):.2f} over "
                    f"{len(per_round)} rounds)")

        lines.append(f"{mixer} vs transformer at {length:,d} frames: throughput {ratio('step_s')}, "
                     f"inference speed {ratio('sample_s')}, peak memory ×{mine.peak_mem_gb / reference.peak_mem_gb:.2f}")
    return lines


def write_results(results: list[BenchCase], out_dir: Path) -> tuple[Path, Path]:
    from megageo.eval.plots import plot_bench

    out_dir.mkdir(parents=True, exist_ok=True)
    records = [{**asdict(case), "spread": case.spread} for case in results]
    json_path = out_dir / "bench.json"
    write_text(json_path, json.dumps(records, indent=2))
    return json_path, plot_bench(records, out_dir / "bench.png")


def parse_frame(text: str) -> tuple[int, int, int]:
    try:
        channels, height, width = (int(value) for value in text.split(","))
    except ValueError:
        raise MegageoError(f"--frame must be C,H,W (three integers), got {text!r}") from None
    return channels, height, width
