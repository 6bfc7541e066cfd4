"""Formats: a raw row -> a conversation (list of ``{"role", "content"}``) or, for ``text``, a string.

* ``chat``: the row's ``fields.messages`` column is a list of messages, each with
  ``fields.role`` / ``fields.content`` keys. Roles allowed: system, user, assistant, tool. In CSV
  files the column holds the list as JSON text.
* ``instruction``: ``fields.instruction`` plus, when present and non-empty, ``fields.input``
  (joined by a blank line) become the user message; ``fields.output`` the assistant message.
* ``text``: ``fields.text`` is trained on as is (plus EOS); no chat template.

``system_prompt`` is prepended to conversations that have no system message. Messages keep only
role and content, so every template sees the same two keys whatever the column names were.
"""
from __future__ import annotations

import json
from typing import Any

from .rows import RowError

ALLOWED_ROLES = ("system", "user", "assistant", "tool")


def _field(row: dict[str, Any], name: str, what: str) -> Any:
    if name not in row or row[name] is None:
        present = ", ".join(sorted(map(str, row.keys()))) or "none"
        raise RowError("missing_field", f"no '{name}' field ({what}); fields present: {present}. "
                                        f"Map your column name under data.fields in the recipe")
    return row[name]


def _decode_json_cell(value: Any, name: str) -> Any:
    """CSV cells are strings; a messages cell holds JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise RowError("malformed_json",
                           f"the '{name}' cell is not valid JSON (column {err.colno}: {err.msg})") from err
    return value


def chat_messages(row: dict[str, Any], fields: Any) -> list[dict[str, str]]:
    """Extract and check the messages of a ``chat`` row."""
    raw = _decode_json_cell(_field(row, fields.messages, "the list of chat messages"), fields.messages)
    if not isinstance(raw, list):
        raise RowError("missing_field",
                       f"'{fields.messages}' must be a list of messages, got {type(raw).__name__}")
    if not raw:
        raise RowError("empty_conversation", f"'{fields.messages}' is an empty list")
    messages: list[dict[str, str]] = []
    for index, msg in enumerate(raw):
        where = f"message {index + 1}"
        if not isinstance(msg, dict):
            raise RowError("not_an_object", f"{where} is a {type(msg).__name__}, not an object")
        if fields.role not in msg:
            raise RowError("missing_field", f"{where} has no '{fields.role}' key")
        role = msg[fields.role]
        if role not in ALLOWED_ROLES:
            raise RowError("unknown_role",
                           f"{where} has role {role!r}; allowed roles: {', '.join(ALLOWED_ROLES)}")
        content = msg.get(fields.content)
        if fields.content not in msg or not isinstance(content, str):
            raise RowError("missing_field", f"{where} ({role}) has no text '{fields.content}' "
                                            f"(got {type(content).__name__ if fields.content in msg else 'nothing'})")
        messages.append({"role": role, "content": content})
    if not any(m["role"] != "system" for m in messages):
        raise RowError("empty_conversation", "the conversation has only system messages")
    return messages


def instruction_messages(row: dict[str, Any], fields: Any) -> list[dict[str, str]]:
    """Turn an ``instruction`` row into a user + assistant conversation."""
    instruction = _field(row, fields.instruction, "the instruction")
    output = _field(row, fields.output, "the expected answer")
    extra = row.get(fields.input)
    for name, value in ((fields.instruction, instruction), (fields.output, output)):
        if not isinstance(value, str):
            raise RowError("missing_field", f"'{name}' must be text, got {type(value).__name__}")
    if extra is not None and not isinstance(extra, str):
        raise RowError("missing_field", f"'{fields.input}' must be text, got {type(extra).__name__}")
    if not instruction.strip():
        raise RowError("empty_conversation", f"'{fields.instruction}' is empty")
    user = instruction if not extra else f"{instruction}\n\n{extra}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def text_of(row: dict[str, Any], fields: Any) -> str:
    """The raw training text of a ``text`` row."""
    value = _field(row, fields.text, "the raw text")
    if not isinstance(value, str):
        raise RowError("missing_field", f"'{fields.text}' must be text, got {type(value).__name__}")
    if not value.strip():
        raise RowError("empty_conversation", f"'{fields.text}' is empty")
    return value


def with_system_prompt(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    """Prepend ``system_prompt`` unless the conversation already has a system message."""
    if not system_prompt or any(m["role"] == "system" for m in messages):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def row_to_conversation(value: Any, data: Any) -> list[dict[str, str]] | str:
    """Apply ``data.format`` to one row: a message list for chat/instruction, a string for text."""
    if not isinstance(value, dict):
        raise RowError("not_an_object", f"the row is a {type(value).__name__}, not an object")
    fmt = data.format
    if fmt == "text":
        return text_of(value, data.fields)
    if fmt == "instruction":
        messages = instruction_messages(value, data.fields)
    elif fmt == "chat":
        messages = chat_messages(value, data.fields)
    else:
        raise ValueError(f"unknown data.format {fmt!r}; use chat, instruction or text")
    return with_system_prompt(messages, data.system_prompt)
