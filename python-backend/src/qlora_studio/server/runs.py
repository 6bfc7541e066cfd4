"""Run supervisor: every run is its own child process, its log file is the truth.

The server never trains in-process, so an OOM or a crash in training cannot take it down. Each run
process appends to `runs/<id>/events.jsonl`; the supervisor tails that file (see tail.py) and fans
the lines out. When a run's process is gone without having written an end state, the supervisor
appends one itself with EventWriter (so seq stays contiguous) and says why. Runs survive the
server: they live in their own session, and a restarted server finds them on disk, re-adopts the
live ones and marks the dead ones `interrupted` (resumable).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ..events import TERMINAL_STATES, EventWriter
from ..rundir import list_checkpoints
from .protocol import ProtocolError
from ..train.errors import OOM_HINT, looks_like_oom
from .tail import EventTail

POLL_S = 0.005
IDLE_POLL_S = 0.5
LIVENESS_S = 0.5
EXIT_GRACE_S = 15.0  # how long a resume waits for a run that already reported its end to exit


_LIMIT_TRAMPOLINE = (
    "import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_DATA, (n, n)); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def default_engine_cmd() -> list[str]:
    """The command a run is started with, before `RECIPE --run-id ID --output-dir DIR [--resume]`.

    QLORA_STUDIO_ENGINE_CMD (a JSON list) replaces it; the protocol tests use it to run a
    stand-in writer instead of a real training process.
    """
    env = os.environ.get("QLORA_STUDIO_ENGINE_CMD")
    if env:
        cmd = json.loads(env)
        if not (isinstance(cmd, list) and cmd and all(isinstance(x, str) for x in cmd)):
            raise ValueError("QLORA_STUDIO_ENGINE_CMD must be a JSON list of strings")
        return cmd
    return [sys.executable, "-m", "qlora_studio.cli", "run"]


@dataclass
class RunRecord:
    """What the supervisor knows about one run."""

    run_id: str
    run_dir: Path
    tail: EventTail
    recipe_path: str | None = None
    created: float | None = None
    pid: int | None = None
    proc: asyncio.subprocess.Process | None = None  # set when this server started the process
    adopted: bool = False  # a live process started by an earlier server
    stop_requests: int = 0
    memory_limited: bool = False
    log_path: Path | None = None
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    spawn_seq: int | None = None  # last seq on disk when this server spawned the process

    @property
    def alive(self) -> bool:
        """Whether the run's process is (as far as we know) still running."""
        return (self.proc is not None and self.proc.returncode is None) or self.adopted


class RunSupervisor:
    """Starts, stops, lists and tails runs under one runs directory."""

    def __init__(self, runs_dir: Path, engine_cmd: list[str] | None = None, log: Callable[[str], None] | None = None) -> None:
        self.runs_dir = runs_dir.resolve()
        self.engine_cmd = engine_cmd or default_engine_cmd()
        self.runs: dict[str, RunRecord] = {}
        self._log = log or (lambda _m: None)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.state_dir = self.runs_dir / ".server"

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Find runs on disk, reconcile their state, start tailing; call inside the event loop."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        for d in sorted(self.runs_dir.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and ((d / "events.jsonl").exists() or (d / "run.json").exists()):
                self._discover(d.name)
        self._task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def close(self) -> None:
        """Stop tailing. Run processes are left running on purpose: they outlive the server."""
        if self._task:
            self._task.cancel()
        for rec in self.runs.values():
            for w in rec.watchers:
                w.cancel()

    def get(self, run_id: str) -> RunRecord:
        """The run, discovered from disk on demand; ProtocolError not_found when there is none."""
        rec = self.runs.get(run_id)
        if rec is None and _safe_id(run_id) and (self.runs_dir / run_id / "events.jsonl").exists():
            rec = self._discover(run_id)
        if rec is None:
            raise ProtocolError("not_found", f"no run {run_id!r} in {self.runs_dir}; call run.list for the runs this backend has")
        return rec

    def _discover(self, run_id: str) -> RunRecord:
        run_dir = self.runs_dir / run_id
        rec = RunRecord(run_id, run_dir, EventTail(run_id, run_dir / "events.jsonl"))
        self._read_run_json(rec)
        rec.tail.poll()
        self.runs[run_id] = rec
        if rec.tail.state not in TERMINAL_STATES:
            if rec.pid and _process_alive(rec.pid, run_id, rec.run_dir):
                rec.adopted = True
                rec.watchers.append(asyncio.get_running_loop().create_task(self._watch_adopted(rec)))
                self._log(f"re-adopted live run {run_id} (pid {rec.pid})")
            else:
                who = f"pid {rec.pid}" if rec.pid else "its process"
                self._finish(rec, "interrupted", f"the training process ({who}) is gone: it ended without reporting an end state "
                             "(the host, the backend or the process was stopped); resume the run to continue from its last checkpoint")
        return rec

    def _read_run_json(self, rec: RunRecord) -> None:
        try:
            meta = json.loads((rec.run_dir / "run.json").read_text())
        except (OSError, ValueError):
            return
        if isinstance(meta.get("pid"), int):
            rec.pid = meta["pid"]
        rec.recipe_path = meta.get("recipe_path") or rec.recipe_path
        rec.created = _timestamp(meta.get("created")) or rec.created

    # ---- start / stop ----------------------------------------------------------------------
    async def start(self, recipe_path: str, run_id: str | None, resume: bool, max_steps: int | None,
                    memory_limit_mb: int | None) -> RunRecord:
        """Spawn a run process (a new run, or `resume` of run_id / of the newest resumable run of the recipe)."""
        recipe = Path(recipe_path).expanduser()
        if not recipe.is_file():
            raise ProtocolError("invalid_params", f"recipe {recipe_path!r} does not exist on the backend host; pass an absolute path to a *.qlora.yaml file")
        recipe = recipe.resolve()
        if resume:
            rec = self.get(run_id) if run_id else self._newest_resumable(recipe)
            rec.tail.poll()
            if rec.alive and rec.proc is not None and rec.tail.state in TERMINAL_STATES:
                # It already wrote its end state (e.g. stopped) and is only exiting: wait for that
                # instead of refusing a resume that follows a stop at once.
                try:
                    await asyncio.wait_for(rec.proc.wait(), EXIT_GRACE_S)
                except asyncio.TimeoutError:
                    pass
            if rec.alive:
                raise ProtocolError("conflict", f"run {rec.run_id} is still running (pid {rec.pid}); stop it before resuming")
            run_id = rec.run_id
        else:
            run_id = run_id or _new_run_id(recipe)
            if run_id in self.runs or (self.runs_dir / run_id).exists():
                raise ProtocolError("conflict", f"run {run_id!r} already exists; pick another run_id or pass resume: true")
        cmd = [*self.engine_cmd, str(recipe), "--run-id", run_id, "--output-dir", str(self.runs_dir)]
        if max_steps:
            cmd += ["--max-steps", str(max_steps)]
        if resume:
            cmd.append("--resume")
        log_path = self.state_dir / "logs" / f"{run_id}.log"
        limit = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
        # The limit is set by a tiny exec trampoline, not preexec_fn: the server has threads, and
        # running Python between fork and exec in a threaded process can deadlock.
        spawn = [sys.executable, "-c", _LIMIT_TRAMPOLINE, str(limit), *cmd] if limit else cmd
        with open(log_path, "ab") as logf:
            proc = await asyncio.create_subprocess_exec(
                *spawn, stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # outlives the server and its terminal; not hit by a Ctrl-C meant for the server
            )
        rec = self.runs.get(run_id) or RunRecord(run_id, self.runs_dir / run_id, EventTail(run_id, self.runs_dir / run_id / "events.jsonl"))
        rec.proc, rec.pid, rec.adopted, rec.stop_requests = proc, proc.pid, False, 0
        rec.spawn_seq = rec.tail.last_seq
        rec.recipe_path, rec.log_path, rec.memory_limited = str(recipe), log_path, bool(limit)
        rec.created = rec.created or time.time()
        self.runs[run_id] = rec
        rec.watchers.append(asyncio.get_running_loop().create_task(self._watch_child(rec, proc)))
        self._wake.set()
        self._log(f"started run {run_id} (pid {proc.pid}): {' '.join(cmd)}")
        return rec

    def _newest_resumable(self, recipe: Path) -> RunRecord:
        cands = [r for r in self.runs.values() if r.recipe_path and Path(r.recipe_path) == recipe and not r.alive and _resumable(r)]
        if not cands:
            raise ProtocolError("not_found", f"no stopped or interrupted run of {recipe} with a checkpoint to resume; start a new run")
        return max(cands, key=lambda r: r.created or 0)

    def stop(self, run_id: str, force: bool) -> str:
        """First call: SIGTERM (the run checkpoints at the next step and stops). Second call or force: SIGKILL."""
        rec = self.get(run_id)
        if not rec.alive or not rec.pid:
            return "not_running"
        rec.stop_requests += 1
        try:
            if force or rec.stop_requests > 1:
                os.killpg(rec.pid, signal.SIGKILL) if _is_group_leader(rec.pid) else os.kill(rec.pid, signal.SIGKILL)
                return "killed"
            os.kill(rec.pid, signal.SIGTERM)
        except ProcessLookupError:
            return "not_running"
        return "signalled"

    # ---- watching --------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            active = False
            for rec in list(self.runs.values()):
                if rec.alive or rec.tail.state not in TERMINAL_STATES:
                    active = True
                    rec.tail.poll()
            if active:
                await asyncio.sleep(POLL_S)
            else:
                # Idle: no run can write, so wake rarely (a shared machine's CPUs are not ours) or on start().
                try:
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()

    async def _watch_child(self, rec: RunRecord, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        rec.tail.poll()
        if rec.proc is proc and rec.tail.state not in TERMINAL_STATES:
            self._finish_dead(rec, code)
        self._log(f"run {rec.run_id} process exited with {code}; state {rec.tail.state}")

    async def _watch_adopted(self, rec: RunRecord) -> None:
        while rec.pid and _process_alive(rec.pid, rec.run_id, rec.run_dir):
            await asyncio.sleep(LIVENESS_S)
        rec.adopted = False
        rec.tail.poll()
        if rec.tail.state not in TERMINAL_STATES and rec.proc is None:
            self._finish_dead(rec, None)

    def _finish_dead(self, rec: RunRecord, code: int | None) -> None:
        last = checkpoint_hint(rec)
        output = _tail_text(rec.log_path)
        if rec.stop_requests > 1 or (rec.stop_requests and code is not None and code < 0):
            self._finish(rec, "stopped", f"killed on request before it could save a checkpoint; resume continues from {last}")
        elif rec.stop_requests:
            self._finish(rec, "stopped", f"stopped on request; the process exited (code {code}) without reporting its end; "
                         f"resume continues from {last}")
        elif looks_like_oom(output) or (rec.memory_limited and code is not None and code < 0):
            msg = f"the training process ran out of host memory{' (the memory limit set for this run)' if rec.memory_limited else ''}"
            with _writer(rec) as w:
                w.emit("error", kind="oom", message=msg, hint=OOM_HINT, details=output[-2000:])
            self._finish(rec, "failed", f"{msg}. {OOM_HINT} Last checkpoint: {last}")
        elif code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            self._finish(rec, "interrupted", f"the training process was killed by {name} (by a user, or the OS out-of-memory killer); "
                         f"resume the run to continue from {last}")
        elif code is None:
            self._finish(rec, "interrupted", f"the training process (pid {rec.pid}) ended without reporting an end state; resume continues from {last}")
        else:
            last_line = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "no output")
            with _writer(rec) as w:
                w.emit("error", kind="exception", message=f"training process exited with code {code}: {last_line[:500]}",
                       hint=f"see the process log {rec.log_path}", details=output[-2000:])
            self._finish(rec, "failed", f"the training process exited with code {code}: {last_line[:300]}")

    def _finish(self, rec: RunRecord, state: str, reason: str) -> None:
        with _writer(rec) as w:
            w.status(state, reason=reason, message=reason)
        rec.tail.poll()

    # ---- listing -----------------------------------------------------------------------------
    def info(self, rec: RunRecord) -> dict[str, Any]:
        """The run as a RunInfo dict (see src/protocol/methods.ts)."""
        if rec.recipe_path is None or rec.created is None or (rec.pid is None and not rec.alive):
            self._read_run_json(rec)
        t = rec.tail
        state = t.state
        if rec.alive and rec.spawn_seq is not None and t.last_seq == rec.spawn_seq:
            # Spawned (e.g. resumed) but the process has not written its first event yet: the old
            # terminal state on disk would be misleading.
            state = "queued"
        out: dict[str, Any] = {
            "run_id": rec.run_id, "state": state, "step": max(t.step, 0), "total_steps": t.total_steps,
            "last_loss": t.last_loss, "recipe_path": rec.recipe_path, "created": rec.created,
            "run_dir": str(rec.run_dir), "last_seq": t.last_seq, "pid": rec.pid if rec.alive else None,
            "resumable": (not rec.alive) and _resumable(rec),
        }
        adapter = t.adapter_path or (str(rec.run_dir / "adapter") if (rec.run_dir / "adapter" / "adapter_config.json").exists() else None)
        if adapter:
            out["adapter_path"] = adapter
        if t.reason:
            out["reason"] = t.reason
        return out

    def list(self) -> list[dict[str, Any]]:
        """Every known run, newest first; runs created on disk by other tools are picked up too."""
        for d in self.runs_dir.iterdir():
            if d.is_dir() and not d.name.startswith(".") and d.name not in self.runs and (d / "events.jsonl").exists():
                self._discover(d.name)
        return sorted((self.info(r) for r in self.runs.values()), key=lambda i: i["created"] or 0, reverse=True)


class _writer:
    # EventWriter as a context manager, so the file is closed even when emit raises.
    def __init__(self, rec: RunRecord) -> None:
        self.w = EventWriter(rec.tail.path, rec.run_id)

    def __enter__(self) -> EventWriter:
        return self.w

    def __exit__(self, *_exc: object) -> None:
        self.w.close()


def checkpoint_hint(rec: RunRecord) -> str:
    """The last completed checkpoint of a run, in words."""
    steps = list_checkpoints(rec.run_dir)
    return f"the checkpoint at step {steps[-1][0]} ({steps[-1][1]})" if steps else "the start (no checkpoint was saved yet)"


def _resumable(rec: RunRecord) -> bool:
    return rec.tail.state in ("stopped", "interrupted", "failed") and bool(list_checkpoints(rec.run_dir))


def _tail_text(path: Path | None, limit: int = 16384) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _process_alive(pid: int, run_id: str, run_dir: Path | None = None) -> bool:
    """True when pid runs and is this run's process, not a recycled pid.

    The run's process writes its pid into run.json after it starts, so that process began before
    run.json's last change; a process that reuses the pid later began after it. Runs started by hand
    without --run-id are recognised this way too, which a command-line check would miss.
    """
    try:
        import psutil

        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        meta = run_dir / "run.json" if run_dir else None
        if meta is not None and meta.exists():
            return p.create_time() <= meta.stat().st_mtime + 1.0
        return any(run_id in a for a in p.cmdline())
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied, or no psutil: treat as gone
        return False


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _safe_id(run_id: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", run_id))


def _new_run_id(recipe: Path) -> str:
    stem = recipe.name.split(".")[0] or "run"
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem)[:40].strip("-") or "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _timestamp(v: Any) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
