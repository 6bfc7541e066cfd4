"""The run directory `runs/<run_id>/`: creation, `run.json`, checkpoints on disk, resumable runs.

Layout (DESIGN.md, "Run directory"):
    recipe.qlora.yaml      the recipe exactly as given (frozen: a resume trains what was started)
    run.json               {run_id, created, pid, recipe_path, base_model, total_steps, state}
    events.jsonl           the event log (qlora_studio.events)
    checkpoints/step-N/    written to checkpoints/.tmp-step-N, then renamed (atomic)
    checkpoints/best/      the adapter with the best eval loss so far
    adapter/               the final adapter (last step), with tokenizer and chat template
    README.md              the model card
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from .events import TERMINAL_STATES

RUN_JSON = "run.json"
FROZEN_RECIPE = "recipe.qlora.yaml"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
# Written beside an adapter: base model and quantization, so generate and merge find the base.
ADAPTER_META = "qlora_studio.json"
_STEP_RE = re.compile(r"^step-(\d+)$")


def new_run_id(prefix: str | None = None) -> str:
    """A sortable, unique run id: `<prefix>-YYYYmmdd-HHMMSS-xxxx` (prefix defaults to "run")."""
    return f"{prefix or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


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


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """The run's `run.json`, or {} when it does not exist yet."""
    p = Path(run_dir) / RUN_JSON
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def update_run_json(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge fields into run.json (atomically) and return the new content."""
    data = read_run_json(run_dir)
    data.update(fields)
    write_json_atomic(Path(run_dir) / RUN_JSON, data)
    return data


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


def find_resumable_run(runs_root: Path, recipe_path: Path) -> Path | None:
    """The newest run under runs_root started from recipe_path that did not complete and has a checkpoint."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    target = str(Path(recipe_path).resolve())
    candidates = []
    for d in root.iterdir():
        try:
            info = read_run_json(d) if d.is_dir() else {}
        except (OSError, ValueError):  # another run's broken run.json must not stop this resume
            continue
        if not info or info.get("recipe_path") != target:
            continue
        if info.get("state") == "completed" or latest_checkpoint(d) is None:
            continue
        candidates.append((info.get("created", ""), d.name, d))
    return max(candidates)[2] if candidates else None


def is_terminal(state: str | None) -> bool:
    """Whether a run state is final."""
    return state in TERMINAL_STATES
