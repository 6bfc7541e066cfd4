"""Human wording for schema violations, built from the JSON Schema so both languages agree.

Mirror: src/recipe/messages.ts words the same violations the same way.
"""
from __future__ import annotations

import difflib
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

_NOUNS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping of keys to values",
    "array": "a list",
    "null": "empty",
}


def show(value: Any) -> str:
    """A short rendering of the offending value for `(got ...)`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "infinity" if value > 0 else "-infinity"
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, str)):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def num(value: Any) -> str:
    """Render a schema bound (2e-4, 1, 0.5) without a trailing .0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def type_noun(schema: dict[str, Any]) -> str:
    """What a value matching `schema` is called in a message."""
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = schema.get("type")
    if kind == "array":
        at_least = schema.get("minItems", 0)
        items = schema.get("items", {}).get("type")
        of = {"string": "names", "number": "numbers", "integer": "whole numbers"}.get(items, "items")
        return f"a non-empty list of {of}" if at_least >= 1 else f"a list of {of}"
    if kind == "string" and schema.get("minLength", 0) >= 1:
        return "non-empty text"
    return _NOUNS.get(str(kind), str(kind))


def alternatives(branches: list[dict[str, Any]], got: Any) -> str:
    """`must be 4 or 8 (got 5)` for an anyOf whose branches all failed."""
    names = [type_noun(b) for b in branches]
    joined = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return f"must be {joined} (got {show(got)})"


def suggest(word: str, choices: list[str]) -> str | None:
    """The closest allowed spelling, when one is close enough to be a likely typo."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


@lru_cache(maxsize=1)
def key_aliases() -> dict[str, str]:
    """Foreign key names (transformers, peft, TRL) and the recipe key each one means."""
    text = resources.files("qlora_studio.recipe").joinpath("key_aliases.json").read_text("utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("$")}


def key_suggestion(key: str, allowed: list[str]) -> str | None:
    """The allowed key that an unknown key most likely means: a known alias, else the closest spelling."""
    alias = key_aliases().get(key)
    return alias if alias in allowed else suggest(key, allowed)


def unknown_key(key: str, allowed: list[str]) -> str:
    """Message for a key the schema does not know, with a did-you-mean when there is one.

    A known foreign name (learning_rate, lora_alpha) maps to its recipe key when that key belongs
    here; otherwise the closest spelling is offered.
    """
    guess = key_suggestion(key, allowed)
    if guess:
        return f'unknown key "{key}"; did you mean "{guess}"?'
    return f'unknown key "{key}"; allowed keys here: {", ".join(allowed)}'


def missing_key(key: str, schema: dict[str, Any]) -> str:
    """Message for a required key that is absent, with what the key is for."""
    what = schema.get("description")
    return f'missing required key "{key}"' + (f" — {what}" if what else "")


def not_one_of(allowed: list[Any], got: Any) -> str:
    """Message for an enum violation, listing every allowed value."""
    listed = ", ".join(str(a) for a in allowed)
    msg = f"must be one of: {listed} (got {show(got)})"
    if isinstance(got, str):
        guess = suggest(got, [str(a) for a in allowed])
        if guess:
            msg += f'; did you mean "{guess}"?'
    return msg


def wrong_type(schema: dict[str, Any], got: Any) -> str:
    """Message for a value of the wrong kind; non-finite numbers get their own wording."""
    if isinstance(got, float) and not math.isfinite(got) and schema.get("type") in ("number", "integer"):
        return f"must be a finite number (got {show(got)})"
    if schema.get("type") == "integer" and isinstance(got, float):
        return f"must be a whole number (got {show(got)})"
    if "enum" in schema:
        return not_one_of(schema["enum"], got)
    return f"must be {type_noun(schema)} (got {show(got)})"


def bound(keyword: str, limit: Any, got: Any) -> str:
    """Message for minimum / maximum / exclusive bounds and string or list lengths."""
    ops = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if keyword in ops:
        return f"must be {ops[keyword]} {num(limit)} (got {show(got)})"
    if keyword == "minLength":
        return "must not be empty" if limit == 1 else f"must be at least {limit} characters long"
    if keyword == "maxLength":
        return f"must be at most {limit} characters long"
    if keyword == "minItems":
        return f"must list at least {limit} item{'s' if limit != 1 else ''}"
    return f"must list at most {limit} item{'s' if limit != 1 else ''}"


def pattern(regex: str, got: Any, schema: dict[str, Any]) -> str:
    """Message for a string that does not match the schema's pattern."""
    what = schema.get("description")
    return f"must match {regex} (got {show(got)})" + (f"; {what}" if what else "")
