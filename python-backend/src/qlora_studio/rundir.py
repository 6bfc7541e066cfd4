"""The run directory `runs/<run_id>/`: creation, `run.json`, checkpoints on disk, resumable runs.

Layout (DESIGN.md, "Run directory"):
    recipe.qlora.yaml      the recipe exactly as given (frozen: a resume trains what was started)
    run.json               {run_id, created, pid, recipe_path, base_model, total_steps, state}
    events.jsonl           the event log (qlora_studio.events)
    checkpoints/step-N/    written to checkpoints/.tmp-step-N, then renamed (atomic)
    checkpoints/best/      the adapter with the best eval loss so far
    adapter/               the final adapter (last step), with tokenizer and chat template
    README.md              the model card
    .lock                  flock'ed by the one process writing the run (the trainer)

The server creates run folders (RunDir.create) and decides resumability (RunDir.resume_refusal);
the engine trusts the folder it is given and holds the lock while it writes.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

from .errors import RunExistsError, RunLiveError, UsageError
from .events import TERMINAL_STATES, read_events

RUN_JSON = "run.json"
FROZEN_RECIPE = "recipe.qlora.yaml"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
# Written beside an adapter: base model and quantization, so generate and merge find the base.
ADAPTER_META = "qlora_studio.json"
LOCK = ".lock"
_STEP_RE = re.compile(r"^step-(\d+)$")
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a sibling temp file, fsync it and rename it over `path`.

    Readers (the server, the extension) poll this file; they must never see half of it.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not also keep a half-written temp file
        raise


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete `checkpoints/step-N` folders, oldest first. Temp folders are never listed."""
    ck = Path(run_dir) / CHECKPOINTS
    if not ck.is_dir():
        return []
    found = []
    for child in ck.iterdir():
        m = _STEP_RE.match(child.name)
        if m and child.is_dir() and (child / "trainer_state.json").exists():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    cks = list_checkpoints(run_dir)
    return cks[-1][1] if cks else None


def prune_checkpoints(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest step checkpoints and stale temp folders; returns what went."""
    removed = []
    cks = list_checkpoints(run_dir)
    for _, path in cks[: max(0, len(cks) - keep)]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def clear_stale_temps(run_dir: Path) -> None:
    """Remove `.tmp-*` folders a killed writer left behind (they were never complete)."""
    ck = Path(run_dir) / CHECKPOINTS
    if ck.is_dir():
        for child in ck.iterdir():
            if child.name.startswith(".tmp-") or child.name.startswith(".old-"):
                shutil.rmtree(child, ignore_errors=True)


def new_run_id(recipe_path: str | os.PathLike[str] | None, run_name: str | None = None) -> str:
    """A sortable, unique run id: `<prefix>-YYYYmmdd-HHMMSS-xxxx`.

    The prefix is the recipe's `output.run_name`, else the recipe file's stem, else "run".
    """
    prefix = run_name
    if not prefix and recipe_path:
        prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(recipe_path).name.split(".")[0])[:40].strip("-")
    return f"{prefix or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def is_safe_run_id(run_id: str) -> bool:
    """Whether run_id can name a folder: letters, digits, ".", "_", "-", not starting with a dot."""
    return bool(_RUN_ID_RE.fullmatch(run_id))


def resume_refusal(run_id: str, state: str | None, has_checkpoint: bool, more_steps: bool = False) -> str | None:
    """Why a run that no process holds cannot be resumed, or None when it can.

    The one rule: a run resumes when it has a checkpoint and did not complete, or completed and
    the resume asks for more steps (a new max_steps) to train it further. A run in a non-final
    state that no process holds was interrupted.
    """
    if state == "completed" and not more_steps:
        return (f"run {run_id} completed; its adapter is in {run_id}/adapter. Start a new run to train again, "
                "or resume it with a larger max_steps to train it further")
    if not has_checkpoint:
        return (f"run {run_id} has no checkpoint to continue from (it ended {state or 'before starting'} "
                "before its first save); start a new run instead")
    return None


class RunLock:
    """An exclusive lock on a run folder (flock on `<run>/.lock`), held by the one process writing it.

    The lock lives as long as the open file: a crashed or killed process releases it with its
    file descriptors, so a stale lock cannot exist.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class RunDir:
    """One run folder `<runs root>/<run_id>/`: its files, its run.json, its lock, its resumability."""

    path: Path

    @property
    def run_id(self) -> str:
        """The run id (the folder's name)."""
        return self.path.name

    @property
    def root(self) -> Path:
        """The runs folder holding this run."""
        return self.path.parent

    @property
    def events(self) -> Path:
        """events.jsonl."""
        return self.path / EVENTS

    @property
    def frozen_recipe(self) -> Path:
        """The recipe as it was when the run was created."""
        return self.path / FROZEN_RECIPE

    @property
    def adapter(self) -> Path:
        """The final adapter folder."""
        return self.path / "adapter"

    # ---- creation ----------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, run_id: str, recipe_path: Path | None) -> "RunDir":
        """Make a new run folder (atomically: two creators of one id cannot both succeed).

        Copies the recipe (frozen: a resume trains what was started) and writes run.json in
        state `queued`. Raises RunExistsError when the id is taken.
        """
        if not is_safe_run_id(run_id):
            raise UsageError(f"run id {run_id!r} cannot name a folder: use letters, digits, '.', '_' and '-'")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        path = root / run_id
        try:
            path.mkdir()
        except FileExistsError:
            raise RunExistsError(f"run {run_id!r} already exists in {root}; resume it or choose another run id") from None
        rd = cls(path)
        if recipe_path is not None and Path(recipe_path).is_file():
            shutil.copyfile(recipe_path, rd.frozen_recipe)
            with open(rd.frozen_recipe, "rb") as f:
                os.fsync(f.fileno())  # the frozen recipe must outlive a power cut like the checkpoints
        rd.update(run_id=run_id, created=time.time(), pid=None,
                  recipe_path=str(Path(recipe_path).resolve()) if recipe_path else None,
                  base_model=None, total_steps=None, state="queued")
        return rd

    # ---- run.json ----------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        """run.json, or {} when it does not exist (yet) or is unreadable."""
        try:
            data = json.loads((self.path / RUN_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json (atomically) and return the new content."""
        data = self.read()
        data.update(fields)
        write_json_atomic(self.path / RUN_JSON, data)
        return data

    def exists(self) -> bool:
        """Whether this is a run folder (it has run.json or events.jsonl)."""
        return (self.path / RUN_JSON).exists() or self.events.exists()

    def started(self) -> bool:
        """Whether a training process has written to the run (its event log exists)."""
        return self.events.exists()

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> str | None:
        """The state of the last status event in the log (the log is the truth), else run.json's."""
        state = None
        for ev in read_events(self.events):
            if ev.get("type") == "status":
                state = (ev.get("data") or {}).get("state", state)
        return state or self.read().get("state")

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete `checkpoints/step-N` folders, oldest first."""
        return list_checkpoints(self.path)

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        return latest_checkpoint(self.path)

    def resume_refusal(self, state: str | None = None, more_steps: bool = False) -> str | None:
        """Why this run cannot be resumed, or None (see the module function; a live run is RunLiveError)."""
        return resume_refusal(self.run_id, self.state() if state is None else state, bool(self.checkpoints()), more_steps)

    def resumable(self, state: str | None = None) -> bool:
        """Whether a resume of this run would be accepted now."""
        return not self.is_live() and self.resume_refusal(state) is None

    # ---- lock --------------------------------------------------------------------------------
    def lock(self) -> RunLock:
        """Take the run's exclusive lock without waiting; RunLiveError when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.read().get("pid")
            raise RunLiveError(f"run {self.run_id} is being written by another training process"
                               f"{f' (pid {pid})' if pid else ''}; one trainer per run: stop it first, "
                               "or wait for it to end") from None
        return RunLock(fd)

    def is_live(self) -> bool:
        """Whether a process holds the run's lock (a trainer is writing it)."""
        if not (self.path / LOCK).exists():
            return False
        try:
            self.lock().release()
        except RunLiveError:
            return True
        return False


def runs_root_for(recipe: Any, override: str | os.PathLike[str] | None = None) -> Path:
    """Where a recipe's runs go: `override` (the user's runs folder) when given, else its `output.dir`
    resolved against the recipe's folder."""
    if override:
        return Path(override).expanduser().resolve()
    return recipe.resolve_path(recipe.output.dir)


def find_resumable_run(runs_root: Path, recipe_path: Path) -> RunDir | None:
    """The newest run under runs_root started from recipe_path that resume would accept."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    target = str(Path(recipe_path).resolve())
    candidates = []
    for d in root.iterdir():
        rd = RunDir(d)
        info = rd.read() if d.is_dir() else {}
        if info.get("recipe_path") == target and rd.resumable():
            candidates.append((str(info.get("created", "")), d.name, rd))
    return max(candidates, key=lambda c: c[:2])[2] if candidates else None


def is_terminal(state: str | None) -> bool:
    """Whether a run state is final."""
    return state in TERMINAL_STATES
