"""Peak memory of a training step on CPU, measured as PyTorch's CPU allocator sees it.

The profiler's memory events (`profile_memory=True`) carry, for every allocation and free of a tensor, the bytes the
CPU allocator holds at that instant (`total_allocated`). Their maximum over a window, less the bytes held when the
window opened, is the peak of live tensor bytes — on CPU, what `torch.cuda.max_memory_allocated` is on a GPU, and
the quantity the planner predicts. It is deterministic: unlike the resident set, it does not depend on glibc
returning freed pages (its mmap threshold grows after large frees, so the resident set keeps freed heap), on
page rounding, or on one-time library buffers. The allocator's running total spans profiler sessions, so the
window's own baseline is the total just before its first event.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any


def peak_allocated(fn: Callable[[], Any]) -> int:
    """Peak bytes of tensors allocated while `fn` runs, above what was allocated when it started."""
    import torch
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    gc.collect()  # tensors of earlier work held only by reference cycles would otherwise be freed mid-window
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        node = pending.pop()
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            fields = node.extra_fields
            events.append((node.start_time_ns, fields.total_allocated, fields.alloc_size))
        pending.extend(node.children)
    if not events:
        return 0
    events.sort()
    _, first_total, first_size = events[0]
    return max(total for _, total, _ in events) - (first_total - first_size)
