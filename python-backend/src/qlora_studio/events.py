"""The run event log: `runs/<run_id>/events.jsonl`, one JSON object a line.

The file is the truth and every socket is a view of it: an event is appended and flushed before
anyone else can see it, and `seq` increases by exactly one per run (starting at 1), also across a
resume, which reopens the file and continues after its last line.

Line shape (mirrored by the `RunEvent` zod schema in src/protocol/):
    {"run_id": str, "seq": int, "type": str, "time": float (unix seconds), "data": {...}}

Types and their data:
    status      {state, message?, reason?, adapter_path?}   state in RUN_STATES
    log         {level: "info" | "warning" | "error", message}
    metrics     {step, total_steps, epoch, loss, lr, grad_norm, tokens_per_s, tokens_seen,
                 mem_allocated_mb?, mem_peak_mb?, rss_mb?}
    eval        {step, eval_loss, best_eval_loss, is_best}
    checkpoint  {step, path}
    error       {kind: "oom" | "bad_data" | "bad_recipe" | "exception", message, hint?, details?}
    progress    {phase, message, done?, total?, unit?}   while a run downloads, loads and quantizes
                (phase: model_download | dataset_download | tokenizer | data | model_load | quantize | lora)
"""
from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

RUN_STATES = (
    "queued",
    "loading",
    "running",
    "saving",
    "completed",
    "failed",
    "stopped",
    "interrupted",
)
TERMINAL_STATES = ("completed", "failed", "stopped", "interrupted")
EVENT_TYPES = ("status", "log", "metrics", "eval", "checkpoint", "error", "progress")


def read_events(path: str | os.PathLike[str], after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """Yield the complete events of a log with seq > after_seq.

    A torn last line (a writer killed mid-write) is not yielded: it is not an event yet.
    """
    p = Path(path)
    if not p.exists():
        return
    with p.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                ev = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if ev.get("seq", 0) > after_seq:
                yield ev


def last_seq(path: str | os.PathLike[str]) -> int:
    """The seq of the last complete event in the log, 0 when it is empty or missing."""
    seq = 0
    for ev in read_events(path):
        seq = ev["seq"]
    return seq


class EventWriter:
    """Appends events to a run's log; thread-safe; continues the seq of an existing log."""

    def __init__(self, path: str | os.PathLike[str], run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._repair_torn_tail()
        self._seq = last_seq(self.path)
        self._f = self.path.open("ab", buffering=0)

    def _repair_torn_tail(self) -> None:
        # A killed writer can leave half a line; cut it so the next event starts on a fresh line.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(keep)

    @property
    def seq(self) -> int:
        """The seq of the last event written."""
        return self._seq

    def emit(self, type_: str, **data: Any) -> dict[str, Any]:
        """Append one event and flush it to the OS before returning it."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        with self._lock:
            self._seq += 1
            ev = {"run_id": self.run_id, "seq": self._seq, "type": type_, "time": time.time(), "data": data}
            self._append((json.dumps(ev, separators=(",", ":"), default=_jsonable) + "\n").encode())
            return ev

    def _append(self, line: bytes) -> None:
        # All of the line or none of it: a full disk can accept part of a write, and a half line
        # would hide every later event from readers. On failure the seq is not used up either.
        start = self._f.tell()
        try:
            view = memoryview(line)
            while view:
                n = self._f.write(view)
                if not n:
                    raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
                view = view[n:]
        except BaseException:
            self._seq -= 1
            try:
                self._f.truncate(start)
            except OSError:
                pass
            raise

    def status(self, state: str, **data: Any) -> dict[str, Any]:
        """Emit a status event (state must be one of RUN_STATES)."""
        if state not in RUN_STATES:
            raise ValueError(f"unknown run state {state!r}")
        return self.emit("status", state=state, **data)

    def log(self, message: str, level: str = "info") -> dict[str, Any]:
        """Emit a log event."""
        return self.emit("log", level=level, message=message)

    def sync(self) -> None:
        """Flush the log to disk (not just to the OS), so a power cut cannot take what came before."""
        with self._lock:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        """Close the file; later emits fail."""
        with self._lock:
            self._f.close()


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
