"""Planning figures for a recipe: peak GPU memory and tokens per step (see memory.py for formulas)."""
from __future__ import annotations

from .memory import estimate_memory, load_model_config

__all__ = ["estimate_memory", "load_model_config"]
