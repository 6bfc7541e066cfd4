"""Recipes (`*.qlora.yaml`): load, validate with line numbers, fill defaults.

The rules and defaults live in one place, the zod schema in src/recipe/schema.ts; this package
validates against the JSON Schema generated from it (`recipe.schema.json`, package data).
Mirror of the validation: src/recipe/validate.ts. Reference: docs/recipe.md.

    recipe = load_recipe("examples/tiny/tiny.qlora.yaml")
    recipe.training.lr, recipe.data.train, recipe.resolve_path(recipe.data.train)

`training.max_steps` wins over `training.epochs` when both are written (a warning, not an error);
so do `warmup_steps` over `warmup_ratio`, and `data.eval` over `data.eval_split`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .files import data_file_issues
from .issues import RecipeError, RecipeIssue, sort_issues
from .model import Recipe, as_dict
from .validate import (
    fill_defaults,
    issues_without_positions,
    recipe_json_schema,
    validate_text,
)

__all__ = [
    "Recipe",
    "RecipeError",
    "RecipeIssue",
    "as_dict",
    "load_recipe",
    "recipe_from_dict",
    "recipe_from_text",
    "recipe_json_schema",
    "validate_recipe_text",
]


def validate_recipe_text(text: str, source: str = "<recipe>",
                         recipe_dir: str | os.PathLike[str] | None = None) -> list[RecipeIssue]:
    """Every issue (errors and warnings) in recipe YAML, in file order, with 1-based lines.

    `source` names the text in messages built from these issues; it does not change them. With
    `recipe_dir` (the recipe's folder), the data files it names must exist and be readable.
    """
    del source  # kept for API symmetry with load_recipe / RecipeError
    doc, issues = validate_text(text)
    return _with_file_issues(doc, issues, recipe_dir)


def _with_file_issues(doc: Any, issues: list[RecipeIssue], recipe_dir: str | os.PathLike[str] | None) -> list[RecipeIssue]:
    # Files are checked only for a recipe that is otherwise valid: a broken data section says so first.
    if recipe_dir is None or any(i.severity == "error" for i in issues):
        return issues
    return sort_issues([*issues, *data_file_issues(doc, Path(recipe_dir))])


def recipe_from_text(text: str, recipe_dir: str | os.PathLike[str], source: str = "<recipe>",
                     recipe_path: str | os.PathLike[str] | None = None, *, check_files: bool = False) -> Recipe:
    """Validate YAML text (e.g. an unsaved editor buffer) and return the filled Recipe.

    Raises RecipeError listing every error; warnings are kept on `recipe.warnings`. With
    `check_files`, a data file that is missing or unreadable is an error too.
    """
    doc, issues = validate_text(text)
    if check_files:
        issues = _with_file_issues(doc, issues, recipe_dir)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise RecipeError(issues, source)
    values = fill_defaults(doc.value)
    warnings = tuple(i for i in issues if i.severity == "warning")
    return Recipe.from_values(values, recipe_dir, recipe_path, warnings)


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read, validate and default-fill a recipe file; relative paths in it resolve from its folder,
    and the data files it names must exist and be readable.

    Raises RecipeError (never a bare OSError or YAML error) for a missing or unreadable file too,
    so callers have one thing to catch and show.
    """
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a BOM from Windows editors is not content
    except FileNotFoundError:
        raise RecipeError([RecipeIssue("", 0, 0, "recipe file not found; check the path")], source) from None
    except IsADirectoryError:
        raise RecipeError([RecipeIssue("", 0, 0, "this is a folder; pass the *.qlora.yaml file inside it")], source) from None
    except UnicodeDecodeError as e:
        raise RecipeError([RecipeIssue("", 1, 1, f"the file is not UTF-8 text ({e.reason}); save it as UTF-8")], source) from None
    except OSError as e:
        raise RecipeError([RecipeIssue("", 0, 0, f"cannot read the recipe: {e.strerror or e}")], source) from None
    return recipe_from_text(text, p.resolve().parent, source, recipe_path=p, check_files=True)


def recipe_from_dict(d: Any, recipe_dir: str | os.PathLike[str]) -> Recipe:
    """Validate and default-fill recipe data that is already parsed (issues have line 0).

    The dict is not modified; raises RecipeError listing every error.
    """
    issues = issues_without_positions(d)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise RecipeError(issues, "<recipe dict>")
    warnings = tuple(i for i in issues if i.severity == "warning")
    return Recipe.from_values(fill_defaults(d), recipe_dir, None, warnings)
