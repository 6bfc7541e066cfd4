"""The files a recipe names must be there: the data files exist and can be read.

Checked where a recipe is loaded from a folder (load_recipe, `recipe.validate` with a path,
`qlora-studio validate` and `run`), so a missing dataset is reported at its line before a run
folder is made, not by a run that fails later.
"""
from __future__ import annotations

import os
from pathlib import Path


from .issues import RecipeIssue
from .yaml_source import Located

DATA_FILE_KEYS = ("train", "eval")


def data_file_issues(doc: Located, recipe_dir: Path) -> list[RecipeIssue]:
    """An error at `data.train` / `data.eval` for each local data file that is missing or unreadable."""
    from ..data.readers import local_data_path

    data = doc.value.get("data") if isinstance(doc.value, dict) else None
    out: list[RecipeIssue] = []
    for key in DATA_FILE_KEYS:
        spec = data.get(key) if isinstance(data, dict) else None
        if not isinstance(spec, str) or not spec:
            continue
        path = local_data_path(spec, recipe_dir)
        problem = _problem(path) if path is not None else None
        if problem:
            pos = doc.value_pos(("data", key))
            out.append(RecipeIssue(f"data.{key}", pos.line, pos.column, f"{problem}; paths are relative to the recipe's folder"))
    return out


def _problem(path: Path) -> str | None:
    if not path.exists():
        return f"data file not found: {path}"
    if path.is_dir():
        return f"{path} is a folder; name a .jsonl, .json, .csv or .parquet file inside it"
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        return f"cannot read the data file {path}: {e.strerror or e}" + (
            "; check its permissions" if not os.access(path, os.R_OK) else "")
    return None
