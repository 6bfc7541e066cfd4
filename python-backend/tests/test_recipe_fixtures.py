"""Every recipe fixture gets the verdict, paths and lines its sidecar promises.

The TypeScript suite (test/unit/recipeFixtures.unit.test.ts) reads the same files: valid sidecars
hold zod's parse output, so Python's default filling must equal zod's, field for field.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_studio.recipe import RecipeError, load_recipe, recipe_from_text, validate_recipe_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test" / "fixtures" / "recipes"
VALID = sorted((FIXTURES / "valid").glob("*.qlora.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.qlora.yaml"))


def _sidecar(recipe: Path) -> object:
    return json.loads(recipe.with_name(recipe.name.replace(".qlora.yaml", ".expected.json")).read_text("utf-8"))


def test_enough_fixtures() -> None:
    assert len(VALID) >= 6 and len(INVALID) >= 12


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_fixture_fills_defaults_like_zod(path: Path) -> None:
    errors = [i for i in validate_recipe_text(path.read_text("utf-8")) if i.severity == "error"]
    assert errors == []
    # Content only: the data files these fixtures name do not exist (test_run_extras checks files).
    recipe = recipe_from_text(path.read_text("utf-8"), path.parent, str(path), recipe_path=path)
    assert recipe.to_dict() == _sidecar(path)
    # ints stay ints (1e3 -> 1000), so the engine can use them as step counts
    assert isinstance(recipe.training.grad_accum, int) and not isinstance(recipe.training.grad_accum, bool)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_errors_at_expected_lines(path: Path) -> None:
    issues = validate_recipe_text(path.read_text("utf-8"), source=str(path))
    errors = [i for i in issues if i.severity == "error"]
    expected = _sidecar(path)
    assert isinstance(expected, list)
    # YAML syntax errors are worded by each language's YAML parser, so only their place is shared
    got = [
        {"path": i.path, "line": i.line, **({"message": i.message} if n < len(expected) and "message" in expected[n] else {})}
        for n, i in enumerate(errors)
    ]
    assert got == expected, [i.format() for i in errors]
    for issue in errors:
        assert issue.column >= 1
        assert len(issue.message) > 10
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    first = errors[0]
    assert f"{path}:{first.line}:{first.column}: " in str(caught.value)
    assert caught.value.issues == issues


def _examples() -> list[Path]:
    return sorted([*ROOT.glob("examples/**/*.qlora.yaml"), *ROOT.glob("examples/**/*.qlora.yml")])


def test_examples_exist() -> None:
    assert _examples(), "no examples/**/*.qlora.yaml in the repo"


@pytest.mark.parametrize("path", _examples(), ids=lambda p: str(p.relative_to(ROOT)))
def test_example_recipe_is_valid(path: Path) -> None:
    # Content only: an example's data may be built by a script first (examples/tiny/make_tiny.py).
    recipe = recipe_from_text(path.read_text("utf-8"), path.parent, str(path), recipe_path=path)
    assert recipe.recipe_dir == path.parent.resolve()
    assert recipe.resolve_path(recipe.data.train).is_relative_to(path.parent.resolve())


def _snippets() -> list[dict]:
    return json.loads((FIXTURES / "snippets.json").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", _snippets(), ids=lambda c: c["text"][:40])
def test_snippet_issues_match_typescript(case: dict) -> None:
    got = [
        {"severity": i.severity, "path": i.path, "line": i.line, "message": i.message,
         **({"suggestion": i.suggestion} if i.suggestion is not None else {})}
        for i in validate_recipe_text(case["text"])
    ]
    assert got == case["issues"]
