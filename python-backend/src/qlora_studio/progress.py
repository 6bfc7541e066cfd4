"""Progress of the slow parts before training: hub downloads (bytes), model loading, quantizing.

A run reports them as `progress` events ({phase, message, done?, total?, unit?}, see events.py),
so the editor can show a notification while a run is not yet training. Hub downloads go through
huggingface_hub with a progress-bar class that feeds a ProgressReporter instead of a terminal.
The token for gated models comes from the HF_TOKEN environment variable, which huggingface_hub
reads itself: the backend never copies it into a file, an event or a log.
"""
from __future__ import annotations

import time
from typing import Any, Callable

Emit = Callable[..., Any]  # emit("progress", phase=..., message=..., done=..., total=..., unit=...)

PHASES = ("model_download", "dataset_download", "tokenizer", "data", "model_load", "quantize", "lora")


class ProgressReporter:
    """Turns a growing count (bytes, files) into `progress` events, at most one per `interval` s
    (the first and the last always go out)."""

    def __init__(self, emit: Emit, phase: str, message: str, unit: str = "bytes", interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown progress phase {phase!r}")
        self.emit, self.phase, self.message, self.unit = emit, phase, message, unit
        self.interval, self.clock = interval, clock
        self._last: float | None = None
        self.done = 0

    def __call__(self, done: int, total: int | None, final: bool = False) -> None:
        """Report `done` of `total` (None when unknown)."""
        self.done = done
        now = self.clock()
        if not final and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self.emit("progress", phase=self.phase, message=self.message, done=done, total=total, unit=self.unit)


def reporting_bar(report: Callable[[int, int | None, bool], None]) -> type:
    """A tqdm class (for huggingface_hub's `tqdm_class`) that draws nothing and reports its count."""
    from tqdm.auto import tqdm

    class ReportingBar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # nothing on a terminal: the count leaves as events
            super().__init__(*args, **kwargs)
            self.count = int(kwargs.get("initial") or 0)

        def update(self, n: float | None = 1) -> bool | None:
            self.count += int(n or 0)
            report(self.count, int(self.total) if self.total else None, False)
            return None

        def close(self) -> None:
            if not getattr(self, "_reported_close", False):
                self._reported_close = True
                report(self.count, int(self.total) if self.total else None, True)
            super().close()

    return ReportingBar


def download_model(repo_id: str, revision: str | None, emit: Emit) -> str:
    """Fetch a hub model into the local cache (reporting bytes) and return its local folder.

    Gated models need HF_TOKEN in the backend's environment (the editor passes it from its
    secret storage); huggingface_hub reads it from there.
    """
    from huggingface_hub import snapshot_download

    rep = ProgressReporter(emit, "model_download", f"downloading {repo_id} from the Hugging Face hub")
    return str(snapshot_download(repo_id, revision=revision, tqdm_class=reporting_bar(rep)))
