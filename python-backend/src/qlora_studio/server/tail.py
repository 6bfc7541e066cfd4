"""Follows one run's `events.jsonl` and fans its new lines out to subscribers.

The log is the truth: the tail only ever reads complete lines from it, in file order, and keeps
the byte offset of every seq it has seen, so a replay for `after_seq` is a single read of the
file between two known offsets and the hand-over from replay to live is exact.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

Subscriber = Callable[[list[bytes]], None]


def _clean_line(raw: bytes) -> bytes:
    # json.dumps writes NaN/Infinity, which JSON.parse in the client rejects; events carrying them
    # (a diverged loss) are re-encoded with null so they still reach the user.
    if b"NaN" not in raw and b"Infinity" not in raw:
        return raw
    try:
        ev = json.loads(raw)
    except ValueError:
        return raw
    return json.dumps(_finite(ev), separators=(",", ":")).encode()


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


class EventTail:
    """Reader of one run's log: summary (state, step, loss), seq -> offset index, subscribers."""

    def __init__(self, run_id: str, path: Path) -> None:
        self.run_id = run_id
        self.path = path
        self.offset = 0  # bytes consumed: always the start of the next unread line
        self.last_seq = 0
        self.state = "queued"
        self.state_seq = 0  # seq of the last status event
        self.reason: str | None = None
        self.message: str | None = None
        self.step = 0
        self.total_steps: int | None = None
        self.last_loss: float | None = None
        self.adapter_path: str | None = None
        self.checkpoints: list[str] = []
        self._error: str | None = None
        self._line_starts: list[int] = []  # _line_starts[i] = offset of the line with seq i+1
        self._skipped = False  # a non-event line was seen: replay must filter, not copy
        self._subs: dict[int, Subscriber] = {}
        self._next_sub = 0

    def poll(self) -> int:
        """Read complete new lines, update the summary, push them to subscribers; returns how many."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return 0
        if size < self.offset:
            # Only a torn (incomplete) tail is ever cut by EventWriter, and the tail never consumed
            # it; a shorter file means someone rewrote the log, which we cannot follow safely.
            return 0
        if size == self.offset:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0
        lines: list[bytes] = []
        pos = 0
        base = self.offset
        while pos <= end:
            nl = chunk.index(b"\n", pos)
            raw = chunk[pos:nl]
            start = base + pos
            pos = nl + 1
            if not raw.strip():
                continue
            try:
                ev = json.loads(raw)
                seq = int(ev["seq"])
            except (ValueError, KeyError, TypeError):
                self._skipped = True  # not an event; the writer never produces this, a reader must not choke
                continue
            if seq != self.last_seq + 1:
                self._skipped = True  # duplicates or out-of-order lines would break the no-gap contract
                continue
            self.last_seq = seq
            self._line_starts.append(start)
            self._summarize(ev)
            lines.append(_clean_line(raw))
        self.offset = base + end + 1
        if lines:
            for sub in list(self._subs.values()):
                sub(lines)
        return len(lines)

    def _summarize(self, ev: dict[str, Any]) -> None:
        data = ev.get("data") or {}
        t = ev.get("type")
        if t == "status":
            self.state = data.get("state", self.state)
            self.state_seq = int(ev["seq"])
            if self.state == "failed" and self._error:
                self.reason = self._error  # the error event says what to change; the status only what broke
            elif "reason" in data or "message" in data:
                self.reason = data.get("reason") or data.get("message")
            if self.state in ("loading", "running"):
                self._error = None
        elif t == "error":
            hint = data.get("hint")
            self._error = f"{data.get('kind', 'error')}: {data.get('message', '')}" + (f". {hint}" if hint else "")
            if data.get("adapter_path"):
                self.adapter_path = str(data["adapter_path"])
        elif t == "metrics":
            if isinstance(data.get("step"), int):
                self.step = data["step"]
            if isinstance(data.get("total_steps"), int):
                self.total_steps = data["total_steps"]
            loss = data.get("loss")
            if isinstance(loss, (int, float)) and math.isfinite(loss):
                self.last_loss = float(loss)
        elif t == "checkpoint" and data.get("path"):
            self.checkpoints.append(str(data["path"]))

    def replay(self, after_seq: int) -> list[bytes]:
        """Lines with seq > after_seq that were already read (the subscriber gets the rest live)."""
        if after_seq >= self.last_seq:
            return []
        start = self._line_starts[max(after_seq, 0)]
        with open(self.path, "rb") as f:
            f.seek(start)
            chunk = f.read(self.offset - start)
        lines = [x for x in chunk.split(b"\n") if x.strip()]
        if self._skipped:
            lines = self._filter(lines, after_seq)
        return [_clean_line(x) for x in lines]

    @staticmethod
    def _filter(lines: list[bytes], after_seq: int) -> list[bytes]:
        out, want = [], after_seq + 1
        for raw in lines:
            try:
                seq = int(json.loads(raw)["seq"])
            except (ValueError, KeyError, TypeError):
                continue
            if seq == want:
                out.append(raw)
                want += 1
        return out

    def subscribe(self, fn: Subscriber) -> int:
        """Register a subscriber for lines read from now on; returns a key for unsubscribe."""
        self._next_sub += 1
        self._subs[self._next_sub] = fn
        return self._next_sub

    def unsubscribe(self, key: int) -> None:
        """Forget a subscriber (idempotent)."""
        self._subs.pop(key, None)

    @property
    def subscribers(self) -> int:
        """How many clients watch this run."""
        return len(self._subs)
