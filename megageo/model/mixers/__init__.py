"""Importing this package registers all seven mixers (their configs and layers)."""

from megageo.model.mixers import deltanet, gated_deltanet, gla, global_linear, kda, mamba2, transformer

__all__ = ["deltanet", "gated_deltanet", "gla", "global_linear", "kda", "mamba2", "transformer"]
