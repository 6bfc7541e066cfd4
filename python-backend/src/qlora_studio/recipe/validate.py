"""Validate recipe text or data against the generated JSON Schema and fill its defaults.

The schema is `recipe.schema.json`, generated from the zod schema in src/recipe/schema.ts; this
module never restates a rule or a default, it only words violations and points them at lines.
Mirror: src/recipe/validate.ts.
"""
from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from . import messages as msg
from .issues import RecipeIssue, sort_issues
from .yaml_source import KeyPath, Located, Pos, format_path, parse_yaml


@lru_cache(maxsize=1)
def recipe_json_schema() -> dict[str, Any]:
    """The recipe JSON Schema shipped as package data (read once; treat it as read-only)."""
    text = resources.files("qlora_studio.recipe").joinpath("recipe.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(recipe_json_schema())


def schema_at(path: KeyPath) -> dict[str, Any]:
    """The sub-schema describing the value at `path` ({} when the path leaves the schema)."""
    node = recipe_json_schema()
    for part in path:
        if isinstance(part, int):
            node = node.get("items") or next((b["items"] for b in node.get("anyOf", []) if "items" in b), {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _wants_number(schema: dict[str, Any]) -> bool:
    kinds = {b.get("type") for b in schema.get("anyOf", [schema])}
    return bool(kinds & {"number", "integer"})


def validate_located(doc: Located) -> list[RecipeIssue]:
    """Every schema and semantic issue of parsed YAML, with positions. YAML issues stop here."""
    if doc.issues:
        return sort_issues(doc.issues)
    if doc.value is None:
        return [RecipeIssue("", 1, 1, "the recipe is empty; start with `base_model:` and `data: {train: ...}`")]
    if not isinstance(doc.value, dict):
        pos = doc.values.get((), Pos(1, 1))
        return [
            RecipeIssue(
                "", pos.line, pos.column,
                f"a recipe must be a mapping of keys to values (got {msg.show(doc.value)}); "
                "start with `base_model:`",
            )
        ]
    found = [
        _place(doc, path, where, text, suggestion=quick_fix(doc.value, path, where))
        for path, where, text in schema_violations(doc.value)
    ]
    found += [_place(doc, path, "value", text, "warning") for path, text in semantic_warnings(doc.value)]
    return sort_issues(found)


def _place(doc: Located, path: KeyPath, where: str, text: str, severity: str = "error",
           suggestion: str | None = None) -> RecipeIssue:
    pos = {"key": doc.key_pos, "missing": doc.parent_pos}.get(where, doc.value_pos)(path)
    return RecipeIssue(format_path(path), pos.line, pos.column, text, severity, suggestion)  # type: ignore[arg-type]


def quick_fix(instance: Any, path: KeyPath, where: str) -> str | None:
    """The replacement a quick fix offers: a key for an unknown key, a value for an enum typo.

    Mirror: `quickFix` in src/recipe/validate.ts.
    """
    if where == "key" and path:
        return msg.key_suggestion(str(path[-1]), list(schema_at(path[:-1]).get("properties", {})))
    if where == "value":
        enum = schema_at(path).get("enum")
        got: Any = instance
        for part in path:
            got = got[part] if isinstance(got, (dict, list)) else None
        if enum and isinstance(got, str):
            return msg.suggest(got, [str(e) for e in enum])
    return None


def validate_text(text: str) -> tuple[Located, list[RecipeIssue]]:
    """Parse and validate recipe YAML; returns the parse (for its value) and every issue."""
    doc = parse_yaml(text)
    return doc, validate_located(doc)


def schema_violations(instance: Any) -> list[tuple[KeyPath, str, str]]:
    """(path, where, message) for every schema violation; where is value | key | missing."""
    out: list[tuple[KeyPath, str, str]] = []
    errors = list(_validator().iter_errors(instance))
    # A value of the wrong kind also breaks its enum or bounds; say only the first thing to fix.
    wrong_kind = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    for err in errors:
        if err.validator != "type" and tuple(err.absolute_path) in wrong_kind:
            continue
        out.extend(_explain(err))
    out.extend(_non_finite(instance, ()))
    return out


def _explain(err: ValidationError) -> Iterable[tuple[KeyPath, str, str]]:
    path: KeyPath = tuple(err.absolute_path)
    kw, limit, got, schema = err.validator, err.validator_value, err.instance, err.schema
    if kw == "required":
        for key in limit:
            if isinstance(got, dict) and key not in got:
                yield path + (key,), "missing", msg.missing_key(key, schema["properties"].get(key, {}))
        return
    if kw == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in got:
            if key not in allowed:
                yield path + (key,), "key", msg.unknown_key(key, allowed)
        return
    if kw == "anyOf":
        yield from _explain_any_of(err)
        return
    if kw == "type":
        # a NaN or infinity in a number field gets its own message from _non_finite
        if not (isinstance(got, float) and not math.isfinite(got) and _wants_number(schema)):
            yield path, "value", msg.wrong_type(schema, got)
        return
    if isinstance(got, float) and not math.isfinite(got):
        return
    if kw == "enum":
        yield path, "value", msg.not_one_of(limit, got)
    elif kw == "const":
        yield path, "value", f"must be {json.dumps(limit)} (got {msg.show(got)})"
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "minLength", "maxLength", "minItems", "maxItems"):
        yield path, "value", msg.bound(kw, limit, got)
    elif kw == "pattern":
        yield path, "value", msg.pattern(limit, got, schema)
    else:
        yield path, "value", err.message


def _explain_any_of(err: ValidationError) -> Iterable[tuple[KeyPath, str, str]]:
    """Report inside the one branch of the right kind (e.g. an empty list), else list the kinds."""
    branches: list[dict[str, Any]] = err.validator_value
    got = err.instance
    v = _validator()
    fitting = [i for i, b in enumerate(branches) if "type" in b and v.is_type(got, b["type"]) and "const" not in b]
    if len(fitting) == 1:
        inner = [e for e in err.context or [] if e.relative_schema_path and e.relative_schema_path[0] == fitting[0]]
        if inner:
            for e in inner:
                yield from _explain(e)
            return
    yield tuple(err.absolute_path), "value", msg.alternatives(branches, got)


def _non_finite(value: Any, path: KeyPath) -> Iterable[tuple[KeyPath, str, str]]:
    # JSON Schema accepts NaN and infinity as numbers; zod does not, and no recipe field wants them.
    if isinstance(value, float) and not math.isfinite(value):
        if _wants_number(schema_at(path)):
            yield path, "value", msg.wrong_type({"type": "number"}, value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, path + (i,))


def semantic_warnings(recipe: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Settings that are legal but partly ignored; a warning, never an error.

    Mirror: `semanticWarnings` in src/recipe/validate.ts.
    """
    out: list[tuple[KeyPath, str]] = []
    training = recipe.get("training") if isinstance(recipe.get("training"), dict) else {}
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    if "max_steps" in training and "epochs" in training:
        out.append((("training", "epochs"), "ignored: training.max_steps is set and wins over epochs"))
    if "warmup_steps" in training and "warmup_ratio" in training:
        out.append((("training", "warmup_ratio"), "ignored: training.warmup_steps is set and wins over warmup_ratio"))
    split = data.get("eval_split")
    if "eval" in data and isinstance(split, (int, float)) and not isinstance(split, bool) and split > 0:
        out.append((("data", "eval_split"), "ignored: data.eval is given, so no part of train is held out"))
    return out


def fill_defaults(value: Any, schema: dict[str, Any] | None = None) -> Any:
    """A deep copy of a valid recipe with every schema default filled, nested objects included.

    Whole numbers written as 1e3 or 4.0 become ints where the schema wants an integer, as zod's
    output (a JS number) would print them.
    """
    schema = recipe_json_schema() if schema is None else schema
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in value:
                out[key] = fill_defaults(value[key], sub)
            elif "default" in sub:
                out[key] = fill_defaults(copy.deepcopy(sub["default"]), sub)
        return out
    if isinstance(value, list):
        items = schema.get("items") or next((b.get("items") for b in schema.get("anyOf", []) if "items" in b), {})
        return [fill_defaults(v, items) for v in value]
    if isinstance(value, float) and value.is_integer() and _wants_int(schema):
        return int(value)
    return value


def _wants_int(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer":
        return True
    return any(isinstance(b.get("const"), int) and not isinstance(b.get("const"), bool) for b in schema.get("anyOf", []))


def issues_without_positions(instance: Any) -> list[RecipeIssue]:
    """Validate a dict that did not come from text (positions are 0)."""
    doc = Located(instance)
    return [RecipeIssue(i.path, 0, 0, i.message, i.severity, i.suggestion) for i in validate_located(doc)]
