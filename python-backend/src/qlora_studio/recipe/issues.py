"""Recipe issues and the error that carries them.

Mirror: `RecipeIssue` in src/recipe/validate.ts has the same fields, so the editor, the server and
the CLI show the same diagnostics for the same text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from ..errors import EXIT_BAD_RECIPE, StudioError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class RecipeIssue:
    """One problem in a recipe.

    `path` is dotted ("training.lr", list items as "lora.target_modules[0]", "" for the whole
    file); `line` and `column` are 1-based, or 0 when the recipe did not come from text (a dict).
    Warnings never stop a run; errors do.
    """

    path: str
    line: int
    column: int
    message: str
    severity: Severity = "error"
    # Replacement text for a quick fix: the key an unknown key probably means, or the allowed
    # value closest to a misspelt one. None when there is no confident guess.
    suggestion: str | None = None

    def format(self, source: str = "<recipe>") -> str:
        """Render as `file:line:col: path: message`, the form compilers use, so editors link it."""
        where = f"{source}:{self.line}:{self.column}" if self.line > 0 else source
        label = self.path or "(recipe)"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{label}: {self.message}"

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}: " if self.line > 0 else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}{prefix}{self.path or '(recipe)'}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the shape of the protocol's `recipe.validate` result items)."""
        out: dict[str, object] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "severity": self.severity,
        }
        if self.suggestion is not None:
            out["suggestion"] = self.suggestion
        return out


class RecipeError(StudioError, ValueError):
    """A recipe that cannot be used; `.issues` lists every error found (not just the first)."""

    kind = "bad_recipe"
    exit_code = EXIT_BAD_RECIPE
    protocol_code = "invalid_params"
    hint = "Fix the recipe at the lines listed."

    def __init__(self, issues: Iterable[RecipeIssue], source: str = "<recipe>") -> None:
        self.issues: list[RecipeIssue] = list(issues)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        errors = [i for i in self.issues if i.severity == "error"]
        head = f"{self.source}: {len(errors)} error(s) in recipe; fix them and try again"
        return "\n".join([head, *(i.format(self.source) for i in self.issues)])

    def __str__(self) -> str:
        return self._render()


def sort_issues(issues: Iterable[RecipeIssue]) -> list[RecipeIssue]:
    """Order issues as they appear in the file, errors before warnings on the same spot."""
    return sorted(issues, key=lambda i: (i.line, i.column, i.severity != "error", i.path))
