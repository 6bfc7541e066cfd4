"""What the backend knows about an adapter folder: which base model it belongs to, which run and
recipe made it, the generation defaults, the checkpoints beside it.

One answer for everyone: merge, generate, the CLI and the server's `adapter.info` call
`adapter_info`; the editor asks the server instead of reading these files (they may be on
another machine). Which base model: `qlora_studio.json` (written at training, the absolute
location actually loaded) first, then the run's frozen recipe, then `adapter_config.json`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import NotFoundError, UsageError
from .rundir import ADAPTER_META, RunDir

ADAPTER_CONFIG = "adapter_config.json"


def adapter_meta(adapter: str | Path) -> dict[str, Any]:
    """What training recorded next to an adapter (base location, run, step, quantization), or {}."""
    try:
        data = json.loads((Path(adapter) / ADAPTER_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_adapter_dir(path: Path) -> bool:
    """Whether a folder holds a LoRA adapter."""
    return (path / ADAPTER_CONFIG).is_file()


def run_of_adapter(adapter: Path) -> RunDir | None:
    """The run folder an adapter lives in (`<run>/adapter`, `<run>/checkpoints/<name>`), or None."""
    for cand in (adapter.parent, adapter.parent.parent):
        if (cand / "run.json").is_file() and adapter.is_relative_to(cand):
            return RunDir(cand)
    return None


def _frozen_recipe(run: RunDir | None) -> Any:
    """The run's recipe (its frozen copy, relative paths against the original's folder), or None."""
    if run is None or not run.frozen_recipe.is_file():
        return None
    from .recipe import RecipeError, recipe_from_text

    original = run.read().get("recipe_path")
    base = Path(original).parent if isinstance(original, str) and original else run.path
    try:
        return recipe_from_text(run.frozen_recipe.read_text(encoding="utf-8"), base, source=str(run.frozen_recipe))
    except (RecipeError, OSError, UnicodeDecodeError):
        return None


def _generation_defaults(recipe: Any) -> dict[str, Any]:
    if recipe is not None:
        from .recipe import as_dict

        return dict(as_dict(recipe.generation))
    from .recipe import recipe_json_schema
    from .recipe.validate import fill_defaults

    return dict(fill_defaults({}, recipe_json_schema()["properties"]["generation"]))


def _base_model(adapter: Path, meta: dict[str, Any], recipe: Any) -> str:
    if meta.get("base_model"):
        return str(meta["base_model"])
    if recipe is not None:
        return str(recipe.model_location())
    try:
        base = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    if not base:
        raise UsageError(f"{adapter / ADAPTER_CONFIG} names no base model and no run recipe is beside it; "
                         "pass the base model explicitly")
    return str(base)


def _checkpoints(run: RunDir | None, adapter: Path) -> list[dict[str, Any]]:
    if run is None:
        return []
    out: list[dict[str, Any]] = [{"name": p.name, "step": step, "path": str(p)} for step, p in run.checkpoints()]
    for folder in (run.path / "checkpoints" / "best", run.adapter):
        if is_adapter_dir(folder):
            step = adapter_meta(folder).get("step")
            out.append({"name": folder.name, "step": step if isinstance(step, int) else None, "path": str(folder)})
    return out


def free_sibling(path: Path) -> Path:
    """`path` when nothing is there, else `path-2`, `path-3`, ... (the first that does not exist)."""
    if not path.exists():
        return path
    n = 2
    while path.with_name(f"{path.name}-{n}").exists():
        n += 1
    return path.with_name(f"{path.name}-{n}")


def adapter_info(adapter_dir: str | Path | None = None, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Every fact about an adapter the editor needs (the `adapter.info` result, src/protocol/methods.ts).

    Pass the adapter folder, or a run folder (its final adapter, else its newest checkpoint).
    Raises NotFoundError for a missing folder, UsageError for a folder that holds no adapter.
    """
    if run_dir is not None:
        run: RunDir | None = RunDir(Path(run_dir).expanduser().resolve())
        assert run is not None
        if not run.exists():
            raise NotFoundError(f"no run in {run.path}")
        candidates = [run.adapter, *(p for _, p in reversed(run.checkpoints()))]
        adapter = next((c for c in candidates if is_adapter_dir(c)), None)
        if adapter is None:
            raise UsageError(f"run {run.run_id} has no adapter yet (no final adapter and no checkpoint); "
                             "wait for its first checkpoint")
    elif adapter_dir is not None:
        adapter = Path(adapter_dir).expanduser().resolve()
        if not adapter.is_dir():
            raise NotFoundError(f"{adapter} does not exist on the backend host; pick an adapter folder")
        if not is_adapter_dir(adapter):
            raise UsageError(f"{adapter} holds no {ADAPTER_CONFIG}: pick an adapter folder (a run's adapter/ "
                             "or checkpoints/step-N/)")
        run = run_of_adapter(adapter)
    else:
        raise UsageError("adapter.info needs `adapter_dir` or `run_id`")
    meta = adapter_meta(adapter)
    recipe = _frozen_recipe(run)
    frozen = str(run.frozen_recipe) if run is not None and run.frozen_recipe.is_file() else None
    template = meta.get("chat_template") or (recipe.data.chat_template if recipe is not None else None)
    return {
        "adapter_dir": str(adapter),
        "base_model": _base_model(adapter, meta, recipe),
        "run_id": (run.run_id if run is not None else None) or meta.get("run_id"),
        "run_dir": str(run.path) if run is not None else None,
        "recipe_path": frozen,
        "generation": _generation_defaults(recipe),
        "data_format": recipe.data.format if recipe is not None else None,
        "chat_template": str(template) if template else None,
        "checkpoints": _checkpoints(run, adapter),
        "merge_out_dir": str(free_sibling(run.path / "merged" if run is not None else adapter.with_name(f"{adapter.name}-merged"))),
    }
