"""The validated, default-filled recipe with attribute access (`r.training.lr`).

Fields come from the JSON Schema, not from a hand-written class, so a field added to the zod
schema is readable here without touching Python. An optional field the user left out reads as None.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterator

from .issues import RecipeIssue


class RecipeSection:
    """A read-only view of one mapping of the recipe (the whole recipe, `training`, `lora`, ...)."""

    __slots__ = ("_values", "_schema", "_where")

    def __init__(self, values: dict[str, Any], schema: dict[str, Any], where: str = "") -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_schema", schema)
        object.__setattr__(self, "_where", where)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        props = object.__getattribute__(self, "_schema").get("properties", {})
        if name in values:
            return _wrap(values[name], props.get(name, {}), self._child(name))
        if name in props:
            return None
        where = object.__getattribute__(self, "_where") or "recipe"
        raise AttributeError(f"{where} has no field {name!r}; known fields: {', '.join(props)}")

    def _child(self, name: str) -> str:
        where = object.__getattribute__(self, "_where")
        return f"{where}.{name}" if where else name

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a recipe is read-only; edit the YAML file (or to_dict() and recipe_from_dict)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a recipe is read-only")

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __contains__(self, name: object) -> bool:
        return name in object.__getattribute__(self, "_values")

    def __iter__(self) -> Iterator[str]:
        return iter(object.__getattribute__(self, "_values"))

    def get(self, name: str, default: Any = None) -> Any:
        """Like dict.get: the field's value, or `default` when it is absent or unknown."""
        try:
            value = self.__getattr__(name)
        except AttributeError:
            return default
        return default if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """A deep, mutable copy as plain dicts and lists (absent optional fields are left out)."""
        return copy.deepcopy(object.__getattribute__(self, "_values"))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecipeSection):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_dict().items())))

    def __reduce__(self) -> tuple[Any, ...]:
        # __setattr__ is closed, so copy and pickle must rebuild through __init__
        get = object.__getattribute__
        return (RecipeSection, (get(self, "_values"), get(self, "_schema"), get(self, "_where")))

    def __repr__(self) -> str:
        where = object.__getattribute__(self, "_where") or "Recipe"
        return f"<{where} {object.__getattribute__(self, '_values')!r}>"


def _wrap(value: Any, schema: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return RecipeSection(value, schema, where)
    if isinstance(value, list):
        items = schema.get("items") or next((b["items"] for b in schema.get("anyOf", []) if "items" in b), {})
        return tuple(_wrap(v, items, f"{where}[{i}]") for i, v in enumerate(value))
    return value


class Recipe(RecipeSection):
    """A whole recipe: every default filled, plus where it came from.

    `recipe_path` is the file (None for a recipe built from a dict), `recipe_dir` the folder that
    relative paths in it are relative to, `warnings` the non-fatal issues found while loading.
    """

    __slots__ = ("recipe_path", "recipe_dir", "warnings")

    def __init__(
        self,
        values: dict[str, Any],
        schema: dict[str, Any],
        recipe_dir: Path,
        recipe_path: Path | None = None,
        warnings: tuple[RecipeIssue, ...] = (),
    ) -> None:
        super().__init__(values, schema, "")
        object.__setattr__(self, "recipe_dir", Path(recipe_dir).resolve())
        object.__setattr__(self, "recipe_path", Path(recipe_path).resolve() if recipe_path else None)
        object.__setattr__(self, "warnings", tuple(warnings))

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

    def __reduce__(self) -> tuple[Any, ...]:
        get = object.__getattribute__
        return (Recipe, (get(self, "_values"), get(self, "_schema"), self.recipe_dir, self.recipe_path, self.warnings))

    def __repr__(self) -> str:
        return f"<Recipe {self.recipe_path or self.recipe_dir} base_model={self.base_model!r}>"
