"""The validated, default-filled recipe as typed, frozen dataclasses (`r.training.lr` is a float).

The section classes are generated from the JSON Schema (recipe/types.py, by
scripts/gen_recipe_types.py), so a field added to the zod schema is typed here without touching
Python; `Recipe` adds where the recipe came from and its path rules. Optional fields the user
left out read as None; lists read as tuples (a recipe is read-only).
"""
from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .issues import RecipeIssue
from .types import RecipeModel

_SOURCE = {"source": True}  # marks Recipe's own fields, which are not recipe keys


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_in(tp: Any) -> type | None:
    if isinstance(tp, type) and is_dataclass(tp):
        return tp
    return next((a for a in typing.get_args(tp) if isinstance(a, type) and is_dataclass(a)), None)


def _convert(tp: Any, value: Any) -> Any:
    if isinstance(value, dict):
        cls = _dataclass_in(tp)
        return build(cls, value) if cls is not None else dict(value)
    if isinstance(value, list):
        item = next((typing.get_args(a)[0] for a in (tp, *typing.get_args(tp)) if typing.get_args(a)
                     and typing.get_origin(a) not in (typing.Union, typing.Literal, type(None))), Any)
        return tuple(_convert(item, v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        kinds = set(typing.get_args(tp)) or {tp}
        if float in kinds and int not in kinds:
            return float(value)  # JSON has one number type; a float field reads as a float
    return value


def build(cls: type, values: dict[str, Any], **extra: Any) -> Any:
    """An instance of a section class from validated values (nested mappings become sections)."""
    hints = _hints(cls)
    kwargs = {f.name: _convert(hints[f.name], values[f.name]) for f in fields(cls) if f.name in values}
    return cls(**kwargs, **extra)


def as_dict(section: Any) -> Any:
    """A section as plain, JSON-ready dicts and lists; absent optional fields are left out."""
    if is_dataclass(section) and not isinstance(section, type):
        return {f.name: as_dict(getattr(section, f.name)) for f in fields(section)
                if not f.metadata.get("source") and getattr(section, f.name) is not None}
    if isinstance(section, (tuple, list)):
        return [as_dict(v) for v in section]
    return section


@dataclass(frozen=True, kw_only=True)
class Recipe(RecipeModel):
    """A whole recipe: every default filled, plus where it came from.

    `recipe_path` is the file (None for a recipe built from a dict), `recipe_dir` the folder that
    relative paths in it are relative to, `warnings` the non-fatal issues found while loading.
    """

    recipe_dir: Path = field(metadata=_SOURCE)
    recipe_path: Path | None = field(default=None, metadata=_SOURCE)
    warnings: tuple[RecipeIssue, ...] = field(default=(), metadata=_SOURCE, compare=False)

    @classmethod
    def from_values(cls, values: dict[str, Any], recipe_dir: str | os.PathLike[str],
                    recipe_path: str | os.PathLike[str] | None = None, warnings: tuple[RecipeIssue, ...] = ()) -> "Recipe":
        """The Recipe of validated, default-filled values."""
        return build(cls, values, recipe_dir=Path(recipe_dir).resolve(),
                     recipe_path=Path(recipe_path).resolve() if recipe_path else None, warnings=tuple(warnings))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain dicts and lists (a fresh copy; absent optional fields are left out)."""
        out: dict[str, Any] = as_dict(self)
        return out

    def resolve_path(self, p: str | os.PathLike[str]) -> Path:
        """An absolute path for `p`: `~` expanded, relative paths taken from the recipe's folder."""
        path = Path(os.path.expanduser(os.fspath(p)))
        return path if path.is_absolute() else (self.recipe_dir / path).resolve()

    def is_local_model(self, name: str | None = None) -> bool:
        """Whether `name` (default: base_model) is a folder on disk rather than a hub id.

        A name starting with ./, ../, / or ~ is a path even if it does not exist yet (so the
        engine reports "folder not found" instead of a confusing hub lookup); otherwise it is a
        path only when that folder exists next to the recipe.
        """
        name = self.base_model if name is None else name
        if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or os.path.isabs(name):
            return True
        return self.resolve_path(name).is_dir()

    def model_location(self, name: str | None = None) -> str:
        """What to pass to `from_pretrained`: an absolute folder for local models, else the hub id."""
        name = self.base_model if name is None else name
        return str(self.resolve_path(name)) if self.is_local_model(name) else name

    def tokenizer_location(self) -> str:
        """Where the tokenizer comes from: `tokenizer` when set, else the base model."""
        return self.model_location(self.tokenizer or self.base_model)

    def __repr__(self) -> str:
        return f"<Recipe {self.recipe_path or self.recipe_dir} base_model={self.base_model!r}>"
