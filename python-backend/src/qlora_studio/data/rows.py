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
)


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be trained on: where it is and why."""

    source: str
    line: int
    kind: str
    message: str

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
        super().__init__(
            f"{len(lines)} bad row(s) in the dataset:\n"
            + "\n".join(lines)
            + "\nFix these rows, or set data.skip_bad_rows: true in the recipe to skip them."
        )


class DataSourceError(StudioError, ValueError):
    """The dataset as a whole cannot be read (missing file, unknown extension, no `datasets`)."""

    kind, exit_code, protocol_code = "bad_data", EXIT_BAD_DATA, "invalid_params"
    hint = "Fix the data section of the recipe."


class TemplateError(StudioError, ValueError):
    """The chat template cannot be resolved or compiled."""

    kind, exit_code, protocol_code = "bad_data", EXIT_BAD_DATA, "invalid_params"
    hint = "Fix the data section of the recipe."
