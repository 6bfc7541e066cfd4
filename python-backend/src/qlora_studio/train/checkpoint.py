"""Checkpoints: everything a resume needs, written atomically.

`checkpoints/step-N/` holds the adapter (peft save_pretrained), `optimizer.pt`, `scheduler.pt`,
`rng.pt` (python, numpy, torch and CUDA RNG states) and `trainer_state.json` (step, data
position, tokens seen, best-eval state). It is written into `checkpoints/.tmp-step-N` and
renamed, so a process killed mid-write leaves no folder that looks complete.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from ..rundir import CHECKPOINTS, prune_checkpoints


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


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
                    state: dict[str, Any], keep: int) -> Path:
    """Write checkpoints/step-<step> atomically, then keep only the `keep` newest."""
    import torch

    ck_root = Path(run_dir) / CHECKPOINTS
    ck_root.mkdir(parents=True, exist_ok=True)
    final = ck_root / f"step-{step}"
    tmp = ck_root / f".tmp-step-{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    model.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
    _fsync_tree(tmp)
    if final.exists():  # a resumed run that reached the same step again replaces it
        old = ck_root / f".old-step-{step}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
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
    model.save_pretrained(tmp)
    if extra is not None:
        extra(tmp)
    _fsync_tree(tmp)
    if dest.exists():
        old = dest.with_name(f".old-{dest.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(dest, old)
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, dest)
    return dest


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load adapter weights, optimizer, scheduler and RNG from a checkpoint; return trainer_state."""
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
