"""Run supervisor: every run is its own child process, its log file is the truth.

The server never trains in-process, so an OOM or a crash in training cannot take it down. Each run
process appends to `runs/<id>/events.jsonl`; the supervisor tails that file (see tail.py) and fans
the lines out. When a run's process is gone without having written an end state, the supervisor
appends one itself with EventWriter (so seq stays contiguous) and says why. Runs survive the
server: they live in their own session, and a restarted server finds them on disk, re-adopts the
live ones and marks the dead ones `interrupted` (resumable).

The server is the one author of run ids and folders: a run goes to the client's runs folder when
it names one (the user's setting), else to the recipe's `output.dir`. Every runs folder used, and
every recipe's runs folder a client asked about (runs the CLI wrote), is remembered in
`.server/roots.json`, so run.list finds them again after a restart. One trainer per
run: a start or resume of a live run is refused here, and the engine locks its folder.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ..errors import NotFoundError, NotResumableError, RunExistsError, RunLiveError, UsageError
from ..events import TERMINAL_STATES, EventWriter
from ..rundir import RunDir, is_safe_run_id, list_checkpoints, new_run_id, resume_refusal, runs_root_for, write_json_atomic
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
    """The command a run is started with, before `RECIPE --run-dir DIR [--max-steps N] [--resume]`.

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
        self.roots: list[Path] = [self.runs_dir]
        self._starting: set[str] = set()  # run ids between the checks of start() and their spawn

    # ---- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Find runs on disk, reconcile their state, start tailing; call inside the event loop."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._load_roots()
        self._scan()
        self._task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def close(self) -> None:
        """Stop tailing. Run processes are left running on purpose: they outlive the server."""
        if self._task:
            self._task.cancel()
        for rec in self.runs.values():
            for w in rec.watchers:
                w.cancel()

    # ---- runs folders ------------------------------------------------------------------------
    def _roots_file(self) -> Path:
        return self.state_dir / "roots.json"

    def _load_roots(self) -> None:
        try:
            saved = json.loads(self._roots_file().read_text())
        except (OSError, ValueError):
            saved = []
        for r in saved if isinstance(saved, list) else []:
            if isinstance(r, str) and Path(r) not in self.roots:
                self.roots.append(Path(r))

    def _add_root(self, root: Path) -> None:
        if root not in self.roots:
            self.roots.append(root)
            write_json_atomic(self._roots_file(), [str(r) for r in self.roots[1:]])  # type: ignore[arg-type]

    def add_runs_folder(self, root: Path) -> None:
        """List the runs under `root` too (a recipe's `output.dir`, where the CLI writes its runs);
        a folder that does not exist yet is not remembered."""
        root = Path(root).resolve()
        if root.is_dir():
            self._add_root(root)

    def _scan(self) -> None:
        """Discover run folders in every runs folder that are not known yet."""
        for root in self.roots:
            try:
                children = sorted(root.iterdir())
            except OSError:
                continue
            for d in children:
                if d.name not in self.runs and d.is_dir() and not d.name.startswith(".") and RunDir(d).exists():
                    self._discover(d)

    def get(self, run_id: str) -> RunRecord:
        """The run, discovered from disk on demand; NotFoundError when there is none."""
        rec = self.runs.get(run_id)
        if rec is None and is_safe_run_id(run_id):
            found = next((root / run_id for root in self.roots if RunDir(root / run_id).exists()), None)
            rec = self._discover(found) if found else None
        if rec is None:
            raise NotFoundError(f"no run {run_id!r} in {', '.join(map(str, self.roots))}; "
                                "call run.list for the runs this backend has")
        return rec

    def _discover(self, run_dir: Path) -> RunRecord:
        run_id = run_dir.name
        rec = RunRecord(run_id, run_dir, EventTail(run_id, run_dir / "events.jsonl"))
        self._read_run_json(rec)
        rec.tail.poll()
        self.runs[run_id] = rec
        if rec.tail.state not in TERMINAL_STATES:
            if RunDir(run_dir).is_live() or (rec.pid and _process_alive(rec.pid, run_id, rec.run_dir)):
                rec.adopted = True
                rec.watchers.append(asyncio.get_running_loop().create_task(self._watch_adopted(rec)))
                self._log(f"re-adopted live run {run_id} (pid {rec.pid})")
            else:
                who = f"pid {rec.pid}" if rec.pid else "its process"
                self._finish(rec, "interrupted", f"the training process ({who}) is gone: it ended without reporting an end state "
                             "(the host, the backend or the process was stopped); resume the run to continue from its last checkpoint")
        return rec

    def _read_run_json(self, rec: RunRecord) -> None:
        meta = RunDir(rec.run_dir).read()
        if isinstance(meta.get("pid"), int):
            rec.pid = meta["pid"]
        rec.recipe_path = meta.get("recipe_path") or rec.recipe_path
        rec.created = _timestamp(meta.get("created")) or rec.created

    # ---- start / stop ----------------------------------------------------------------------
    async def start(self, recipe_path: str | None, run_id: str | None, resume: bool, max_steps: int | None,
                    memory_limit_mb: int | None, runs_dir: str | None = None) -> RunRecord:
        """Spawn a run process: a new run (folder made here), or `resume` of run_id / of the newest
        resumable run of the recipe. Refuses a run that is live and a resume that cannot be."""
        if recipe_path is None and not (resume and run_id):
            raise UsageError("run.start needs `recipe_path` (a new run), or `run_id` with `resume: true`")
        recipe = None
        if recipe_path is not None:
            recipe = Path(recipe_path).expanduser()
            if not recipe.is_file():
                raise UsageError(f"recipe {recipe_path!r} does not exist on the backend host; pass an absolute path to a *.qlora.yaml file")
            recipe = recipe.resolve()
        if resume:
            rec = await self._check_resume(recipe, run_id, max_steps is not None)
            # The engine resumes from the run's frozen recipe; the original is only its base folder.
            recipe = Path(rec.recipe_path) if rec.recipe_path else RunDir(rec.run_dir).frozen_recipe
        else:
            assert recipe is not None
            rec = await self._create(recipe, run_id, runs_dir)
        self._starting.add(rec.run_id)
        try:
            return await self._spawn(rec, recipe, max_steps, memory_limit_mb, resume)
        finally:
            self._starting.discard(rec.run_id)

    async def _create(self, recipe_path: Path, run_id: str | None, runs_dir: str | None) -> RunRecord:
        from ..recipe import load_recipe

        recipe = await asyncio.to_thread(load_recipe, recipe_path)  # RecipeError lists every issue
        if run_id in self.runs:
            self._refuse_live(self.runs[run_id])
            raise RunExistsError(f"run {run_id!r} already exists; resume it (resume: true) or pick another run id")
        root = runs_root_for(recipe, runs_dir)
        rd = RunDir.create(root, run_id or new_run_id(recipe_path, recipe.output.run_name), recipe_path)
        self._add_root(root)
        rec = RunRecord(rd.run_id, rd.path, EventTail(rd.run_id, rd.events), recipe_path=str(recipe_path), created=time.time())
        self.runs[rd.run_id] = rec
        return rec

    async def _check_resume(self, recipe: Path | None, run_id: str | None, more_steps: bool) -> RunRecord:
        rec = self.get(run_id) if run_id else self._newest_resumable(recipe)  # type: ignore[arg-type]
        rec.tail.poll()
        if self._only_exiting(rec):
            # It already wrote its end state (e.g. stopped) and is only exiting: wait for that
            # instead of refusing a resume that follows a stop at once.
            assert rec.proc is not None
            try:
                await asyncio.wait_for(rec.proc.wait(), EXIT_GRACE_S)
            except asyncio.TimeoutError:
                pass
        rec.tail.poll()
        self._refuse_live(rec)
        refusal = resume_refusal(rec.run_id, rec.tail.state, bool(list_checkpoints(rec.run_dir)), more_steps)
        if refusal:
            raise NotResumableError(refusal)
        return rec

    @staticmethod
    def _only_exiting(rec: RunRecord) -> bool:
        # The process this server spawned has written its own end state (after its spawn).
        return (rec.alive and rec.proc is not None and rec.tail.state in TERMINAL_STATES
                and rec.tail.state_seq > (rec.spawn_seq or 0))

    def _refuse_live(self, rec: RunRecord) -> None:
        if rec.alive or rec.run_id in self._starting or RunDir(rec.run_dir).is_live():
            pid = f" (pid {rec.pid})" if rec.pid else ""
            raise RunLiveError(f"run {rec.run_id} is running{pid}: one trainer per run. Stop it (run.stop) and "
                               "resume it when it has stopped, or start a new run")

    async def _spawn(self, rec: RunRecord, recipe: Path, max_steps: int | None, memory_limit_mb: int | None,
                     resume: bool) -> RunRecord:
        cmd = [*self.engine_cmd, str(recipe), "--run-dir", str(rec.run_dir)]
        if max_steps:
            cmd += ["--max-steps", str(max_steps)]
        if resume:
            cmd.append("--resume")
        log_path = self.state_dir / "logs" / f"{rec.run_id}.log"
        limit = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
        # The limit is set by a tiny exec trampoline, not preexec_fn: the server has threads, and
        # running Python between fork and exec in a threaded process can deadlock.
        spawn = [sys.executable, "-c", _LIMIT_TRAMPOLINE, str(limit), *cmd] if limit else cmd
        with open(log_path, "ab") as logf:
            proc = await asyncio.create_subprocess_exec(
                *spawn, stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # outlives the server and its terminal; not hit by a Ctrl-C meant for the server
            )
        rec.proc, rec.pid, rec.adopted, rec.stop_requests = proc, proc.pid, False, 0
        rec.spawn_seq = rec.tail.last_seq
        rec.recipe_path, rec.log_path, rec.memory_limited = rec.recipe_path or str(recipe), log_path, bool(limit)
        rec.created = rec.created or time.time()
        rec.watchers.append(asyncio.get_running_loop().create_task(self._watch_child(rec, proc)))
        self._wake.set()
        self._log(f"started run {rec.run_id} (pid {proc.pid}): {' '.join(cmd)}")
        return rec

    def _newest_resumable(self, recipe: Path) -> RunRecord:
        self._scan()
        cands = [r for r in self.runs.values() if r.recipe_path and Path(r.recipe_path) == recipe and self._resumable(r)]
        if not cands:
            raise NotResumableError(f"no stopped, failed or interrupted run of {recipe} with a checkpoint to resume; start a new run")
        return max(cands, key=lambda r: r.created or 0)

    def _resumable(self, rec: RunRecord) -> bool:
        return (not rec.alive and rec.run_id not in self._starting
                and resume_refusal(rec.run_id, rec.tail.state, bool(list_checkpoints(rec.run_dir))) is None
                and not RunDir(rec.run_dir).is_live())

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
        ended = rec.tail.state in TERMINAL_STATES and rec.tail.state_seq > (rec.spawn_seq or 0)
        if rec.proc is proc and not ended:
            # No end state from this process (e.g. it refused to start): say so in the log, or
            # the run would show its previous state and the user would see nothing.
            self._finish_dead(rec, code)
        self._log(f"run {rec.run_id} process exited with {code}; state {rec.tail.state}")

    async def _watch_adopted(self, rec: RunRecord) -> None:
        while RunDir(rec.run_dir).is_live() or (rec.pid and _process_alive(rec.pid, rec.run_id, rec.run_dir)):
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
            self._finish(rec, "failed", f"{msg}. {OOM_HINT} Last checkpoint: {last}",
                         {"kind": "oom", "message": msg, "hint": OOM_HINT, "details": output[-2000:]})
        elif code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            self._finish(rec, "interrupted", f"the training process was killed by {name} (by a user, or the OS out-of-memory killer); "
                         f"resume the run to continue from {last}")
        elif code is None:
            self._finish(rec, "interrupted", f"the training process (pid {rec.pid}) ended without reporting an end state; resume continues from {last}")
        else:
            last_line = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "no output")
            self._finish(rec, "failed", f"the training process exited with code {code}: {last_line[:300]}",
                         {"kind": "exception", "message": f"training process exited with code {code}: {last_line[:500]}",
                          "hint": f"see the process log {rec.log_path}", "details": output[-2000:]})

    def _finish(self, rec: RunRecord, state: str, reason: str, error: dict[str, Any] | None = None) -> None:
        # Under the run's lock: when another trainer holds the run, its log is not ours to write.
        try:
            lock = RunDir(rec.run_dir).lock()
        except RunLiveError:
            self._log(f"run {rec.run_id}: not writing `{state}`, another process holds the run: {reason}")
            return
        with lock, _writer(rec) as w:
            if error:
                w.emit("error", **error)
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
            "run_dir": str(rec.run_dir), "frozen_recipe_path": _existing(RunDir(rec.run_dir).frozen_recipe),
            "last_seq": t.last_seq, "pid": rec.pid if rec.alive else None,
            "resumable": self._resumable(rec),
        }
        adapter = t.adapter_path or (str(rec.run_dir / "adapter") if (rec.run_dir / "adapter" / "adapter_config.json").exists() else None)
        if adapter:
            out["adapter_path"] = adapter
        if t.reason:
            out["reason"] = t.reason
        return out

    def list(self) -> list[dict[str, Any]]:
        """Every known run, newest first; runs created on disk by other tools are picked up too."""
        self._scan()
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


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


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


def _timestamp(v: Any) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
