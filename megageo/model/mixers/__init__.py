"""Importing this package registers all six mixers (their configs and layers)."""

from megageo.model.mixers import deltanet, gated_deltanet, gla, kda, mamba2, transformer

__all__ = ["deltanet", "gated_deltanet", "gla", "kda", "mamba2", "transformer"]
