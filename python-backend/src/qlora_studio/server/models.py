"""Loaded generation models kept between `generate` requests (the playground asks many times).

Loading a real base model takes tens of seconds; keeping the last few loaded makes the
playground interactive. One lock per model serializes generations on it, since a PEFT model is
not safe to drive from two threads at once. An adapter retrained in place is reloaded: its
weights file's mtime is part of the key.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


class ModelCache:
    """LRU of LoadedModel (see qlora_studio.generate) keyed by (base, adapter, adapter mtime)."""

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str | None, float], tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, base_model: str, adapter: str | None) -> tuple[Any, threading.Lock]:
        """The loaded model and its lock; loads it (blocking, call from a worker thread) when missing."""
        from ..generate.stream import load_for_generation

        key = (base_model, adapter, _mtime(adapter))
        with self._lock:
            hit = self._items.get(key)
            if hit:
                self._items.move_to_end(key)
                return hit
            loaded = load_for_generation(base_model, adapter)
            entry = (loaded, threading.Lock())
            self._items[key] = entry
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return entry

    def __len__(self) -> int:
        return len(self._items)


def _mtime(adapter: str | None) -> float:
    if not adapter:
        return 0.0
    for name in ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json"):
        p = Path(adapter) / name
        if p.exists():
            return p.stat().st_mtime
    return 0.0
