"""Route an op to the Triton kernel of fla or mamba-ssm for CUDA tensors, and to megageo's PyTorch kernel otherwise."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TypeVar

import torch

Op = TypeVar("Op", bound=Callable)


def triton_on_cuda(module: str, name: str) -> Callable[[Op], Op]:
    """Decorate a PyTorch kernel so that CUDA inputs go to `module.name` when that package imports.

    The decorated function must take the same arguments, in the same order, as `module.name`: the call is passed
    through unchanged, which is what makes megageo's kernels a drop-in backend for fla and mamba-ssm.
    """

    def decorate(torch_kernel: Op) -> Op:
        @functools.wraps(torch_kernel)
        def dispatch(*args, **kwargs):
            first_tensor = next(x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor))
            triton_kernel = _import_kernel(module, name) if first_tensor.is_cuda else None
            return (triton_kernel or torch_kernel)(*args, **kwargs)

        return dispatch

    return decorate


@functools.cache
def _import_kernel(module: str, name: str) -> Callable | None:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None
