"""`megageo bench models --profile`: where one training step's time goes, mixer by mixer (torch.profiler's
operators by self time), so that whoever tunes a kernel next starts from what dominates instead of a guess."""

from __future__ import annotations

from megageo.bench.models import build_steps


def profile_step(config_path: str, seq_len: int, batch_size: int, frame: tuple[int, int, int], threads: int,
                 top: int = 12) -> str:
    """The `top` operators of one training step (after a warm-up step) by self time: CUDA time on a GPU, CPU
    time otherwise. Runs in this process, which must hold a process group of one."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    _, train_step, _ = build_steps(config_path, seq_len, batch_size, frame)
    train_step()
    cuda = torch.cuda.is_available()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as profiler:
        train_step()
        if cuda:
            torch.cuda.synchronize()
    return profiler.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                         row_limit=top)
