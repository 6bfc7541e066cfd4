"""Checkpoints: everything a resume needs, written atomically.

`checkpoints/step-N/` holds the adapter (peft save_pretrained), `optimizer.pt`, `scheduler.pt`,
`rng.pt` (python, numpy, torch and CUDA RNG states), `trainer_state.json` (step, data
position, tokens seen, best-eval state) and, written last, `checksums.json` (the SHA-256 of every
other file). It is written into `checkpoints/.tmp-step-N` and published with fsync around the
rename (qlora_studio.publish), so neither a killed process nor a power cut leaves a folder that
looks complete and is not.

On resume the newest checkpoint whose files match their checksums is used; a corrupt newer one
(truncated, missing a file, a flipped bit) is reported and skipped. A complete `.tmp-step-N`
(its checksums match: the power went after it was written, before its rename reached the disk)
is published; an incomplete one is removed, and both are said in the run log.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

from ..publish import publish_dir
from ..rundir import CHECKPOINTS, list_checkpoints, prune_checkpoints

CHECKSUMS = "checksums.json"
_TMP_STEP = re.compile(r"^\.tmp-step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (and CUDA when present)."""
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state returned."""
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(folder: Path) -> None:
    """Record the SHA-256 of every file in `folder` (the manifest itself excluded)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    sums = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
    (folder / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be trusted (None when every file matches its checksum).

    A folder without a manifest (written before checksums existed) is checked for its files only.
    """
    manifest = folder / CHECKSUMS
    if not manifest.exists():
        missing = [n for n in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt",
                               "trainer_state.json") if not (folder / n).is_file()]
        return f"missing {', '.join(missing)}" if missing else None
    try:
        sums = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"its checksum list is unreadable ({err})"
    for name, digest in sums.items():
        p = folder / name
        if not p.is_file():
            return f"{name} is missing"
        if _sha256(p) != digest:
            return f"{name} does not match its checksum (truncated or corrupted)"
    return None


def recover_temp_checkpoints(run_dir: Path) -> list[str]:
    """Publish complete `.tmp-step-N` folders whose step is not already intact; say what was done.

    Called before stale temp folders are cleared, so a checkpoint stranded by a power cut between
    writing and renaming is kept rather than deleted.
    """
    ck_root = Path(run_dir) / CHECKPOINTS
    notes: list[str] = []
    if not ck_root.is_dir():
        return notes
    for tmp in sorted(ck_root.iterdir()):
        m = _TMP_STEP.match(tmp.name)
        if not m or not tmp.is_dir():
            continue
        final = ck_root / f"step-{m.group(1)}"
        if not (tmp / CHECKSUMS).exists() or checkpoint_problem(tmp) is not None:
            notes.append(f"ignored the incomplete checkpoint {tmp.name} (its writer stopped before finishing it)")
            continue
        if final.exists() and checkpoint_problem(final) is None:
            continue
        publish_dir(tmp, final)
        notes.append(f"recovered the complete checkpoint {final.name} from {tmp.name} "
                     "(it was written, but its rename had not reached the disk)")
    return notes


def intact_checkpoint(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint whose files match their checksums, and a note per newer one skipped."""
    skipped: list[str] = []
    for _, path in reversed(list_checkpoints(run_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append(f"skipped the corrupt checkpoint {path.name}: {problem}")
    return None, skipped


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
                    state: dict[str, Any], keep: int) -> Path:
    """Write checkpoints/step-<step> atomically and durably, then keep only the `keep` newest."""
    import torch

    ck_root = Path(run_dir) / CHECKPOINTS
    ck_root.mkdir(parents=True, exist_ok=True)
    final = ck_root / f"step-{step}"
    tmp = ck_root / f".tmp-step-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        model.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        write_checksums(tmp)
        publish_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a partial folder (and free its space)
        raise
    prune_checkpoints(run_dir, keep)
    return final


def save_adapter_atomic(model: Any, dest: Path, extra: Any = None) -> Path:
    """Save the adapter into dest through a temp folder (replacing an older dest).

    `extra`, when given, is called with the temp folder before the rename (tokenizer, template).
    """
    dest = Path(dest)
    tmp = dest.with_name(f".tmp-{dest.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        publish_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load adapter weights, optimizer, scheduler and RNG from a checkpoint; return trainer_state.

    Pick the checkpoint with :func:`intact_checkpoint`, which verifies the checksums first.
    """
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / "adapter_model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"checkpoint {path} has no adapter_model.safetensors")
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint {path} does not match this model: unexpected keys {unexpected[:5]}")
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    return json.loads((path / "trainer_state.json").read_text())
