"""Value types and errors shared by the data pipeline.

A *row* is one record of a dataset file (a JSONL line, a JSON list element, a CSV record, a Parquet
row). Rows that cannot become a training example are reported as :class:`BadRow` with the file and
the 1-based line the user can jump to; nothing is dropped without being listed or counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import EXIT_BAD_DATA, StudioError

#: Every kind of bad row, in the order the dataset doctor lists them.
BAD_ROW_KINDS = (
    "malformed_json",
    "not_an_object",
    "missing_field",
    "unknown_role",
    "empty_conversation",
    "template_error",
    "template_mismatch",
    "no_trained_tokens",
    "invalid_text",
    "too_large",
)

#: A chat row is a few levels deep (row -> messages -> message -> content parts); far deeper
#: nesting is hostile or broken input and is refused before anything recurses into it.
MAX_ROW_DEPTH = 64


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be trained on: where it is and why."""

    source: str
    line: int
    kind: str
    message: str
    #: The file's structure is broken past this point, so later rows could not be read at all;
    #: skipping bad rows cannot apply (training on the part before it would silently drop the rest).
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the preview and the protocol."""
        return {"source": self.source, "line": self.line, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Example:
    """One tokenized training example; labels are -100 where no loss is taken."""

    input_ids: list[int]
    labels: list[int]
    source: str
    line: int
    truncated: bool

    @property
    def n_trained(self) -> int:
        """Number of tokens that carry loss."""
        return sum(1 for label in self.labels if label != -100)


@dataclass(frozen=True)
class Record:
    """A raw row read from a dataset file, before it is interpreted by a format."""

    source: str
    line: int
    value: Any


@dataclass
class RowError(ValueError):
    """Raised while turning one row into an example; becomes a :class:`BadRow` of ``kind``."""

    kind: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class BadDataError(StudioError, ValueError):
    """The dataset has bad rows and ``data.skip_bad_rows`` is false.

    ``str()`` lists every bad row as ``file:line: kind: message`` followed by what to do.
    """

    kind, exit_code, protocol_code = "bad_data", EXIT_BAD_DATA, "invalid_params"
    hint = "Fix the rows listed, or set data.skip_bad_rows: true to skip them."

    def __init__(self, bad_rows: list[BadRow]):
        self.bad_rows = list(bad_rows)
        lines = [str(b) for b in self.bad_rows]
        todo = ("\nFix these rows, or set data.skip_bad_rows: true in the recipe to skip them."
                if not any(b.fatal for b in self.bad_rows) else
                "\nA file whose structure is broken cannot be skipped row by row (the rows after the "
                "error could not be read): fix the file; data.skip_bad_rows does not apply to it.")
        super().__init__(f"{len(lines)} bad row(s) in the dataset:\n" + "\n".join(lines) + todo)


def inspect_value(value: Any) -> tuple[int, RowError | None]:
    """Walk a row without recursion: its total characters, or why it cannot be used.

    Refuses nesting deeper than MAX_ROW_DEPTH and lone surrogates (a JSON escape such as
    ``"\\ud800"`` decodes to one; no tokenizer can encode it).
    """
    chars = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_ROW_DEPTH:
            return chars, RowError("too_large", f"the row is nested more than {MAX_ROW_DEPTH} levels deep; "
                                   "a chat row is a few levels (messages, role, content)")
        if isinstance(item, str):
            chars += len(item)
            if not item.isascii():
                bad = _lone_surrogate(item)
                if bad is not None:
                    return chars, RowError("invalid_text", f"the row holds a lone surrogate U+{ord(item[bad]):04X} "
                                           f"(character {bad + 1} of a text); it is not a character any "
                                           "text encoding can store: fix or remove that escape")
        elif isinstance(item, dict):
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return chars, None


def _lone_surrogate(text: str) -> int | None:
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as err:
        return err.start


class DataSourceError(StudioError, ValueError):
    """The dataset as a whole cannot be read (missing file, unknown extension, no `datasets`)."""

    kind, exit_code, protocol_code = "bad_data", EXIT_BAD_DATA, "invalid_params"
    hint = "Fix the data section of the recipe."


class TemplateError(StudioError, ValueError):
    """The chat template cannot be resolved or compiled."""

    kind, exit_code, protocol_code = "bad_data", EXIT_BAD_DATA, "invalid_params"
    hint = "Fix the data section of the recipe."
