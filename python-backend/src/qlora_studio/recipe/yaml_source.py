"""Parse recipe YAML into plain values while remembering where every key and value was written.

Scalars resolve by the YAML 1.2 core schema, the one the editor's `yaml` npm package uses, not
PyYAML's default YAML 1.1 rules: under 1.1 `lr: 1e-4` is the *string* "1e-4" and `yes` is a
boolean, so the two sides would disagree on the same file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from .issues import RecipeIssue

PathKey = Union[str, int]
KeyPath = tuple[PathKey, ...]

_T = "tag:yaml.org,2002:"


class _CoreResolver(BaseResolver):
    """Implicit tags of the YAML 1.2 core schema."""


_CoreResolver.add_implicit_resolver(
    _T + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    _T + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreResolver.add_implicit_resolver(
    _T + "int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_CoreResolver.add_implicit_resolver(
    _T + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


#: A recipe is a handful of nested settings; these bounds stop hostile YAML (anchors of anchors
#: that expand to millions of values, or thousands of nested brackets) before it costs time,
#: memory or the interpreter's stack.
MAX_DEPTH = 64
MAX_VALUES = 10_000


class _TooBig(Exception):
    """The document exceeds MAX_DEPTH or MAX_VALUES; carries the issue to report."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class _Loader(Reader, Scanner, Parser, Composer, _CoreResolver):
    """Composes nodes only; values are built by `_build` so positions and duplicates are kept."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)
        self._depth = 0

    # The scanner looks ahead through open brackets with work that grows with their depth, so
    # nesting is refused where it is scanned as well as where it is composed.
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 - PyYAML's name
        if self.flow_level >= MAX_DEPTH:
            mark = self.get_mark()
            raise _TooBig(mark.line + 1, mark.column + 1, _too_deep())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            mark = self.get_mark()
            raise _TooBig(mark.line + 1, mark.column + 1, _too_deep())
        return bool(super().add_indent(column))

    def compose_node(self, parent: Any, index: Any) -> Any:
        # PyYAML composes recursively: refuse deep nesting before it exhausts the stack.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooBig(mark.line + 1, mark.column + 1, _too_deep())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _too_deep() -> str:
    return f"the recipe is nested more than {MAX_DEPTH} levels deep; a recipe is a few levels of settings"


@dataclass(frozen=True)
class Pos:
    """1-based line and column."""

    line: int
    column: int


@dataclass
class Located:
    """The parsed value plus where each path's key and value start in the text."""

    value: Any
    keys: dict[KeyPath, Pos] = field(default_factory=dict)
    values: dict[KeyPath, Pos] = field(default_factory=dict)
    issues: list[RecipeIssue] = field(default_factory=list)

    def value_pos(self, path: KeyPath) -> Pos:
        """Where an error about the value at `path` should point (the key when the value is empty)."""
        if path in self.values:
            return self.values[path]
        return self.key_pos(path)

    def key_pos(self, path: KeyPath) -> Pos:
        """The key's own line, falling back to the nearest written ancestor."""
        p = path
        while p:
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return self.values.get((), Pos(1, 1))

    def parent_pos(self, path: KeyPath) -> Pos:
        """For a missing key: the line of the mapping that should hold it."""
        parent = path[:-1]
        return self.key_pos(parent) if parent else self.values.get((), Pos(1, 1))


def format_path(path: KeyPath) -> str:
    """("lora", "target_modules", 0) -> "lora.target_modules[0]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# What YAML 1.2 allows in a stream (c-printable); PyYAML refuses the rest, and the editor must too.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")

_HINTS = (
    ("expected <block end>", "check the indentation: keys of one mapping start in the same column"),
    ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation of this key"),
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("could not find expected ':'", "write each entry as `key: value`"),
    ("found unexpected end of stream", "a quote or bracket opened above is never closed"),
    ("expected ',' or ']'", "a [ list ] is not closed"),
    ("expected ',' or '}'", "a { mapping } is not closed"),
    ("expected a single document", "a recipe is one YAML document: remove the extra `---`"),
)


def _hint(problem: str) -> str:
    for needle, hint in _HINTS:
        if needle in problem:
            return f"; {hint}"
    return ""


def _pos(node: Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _is_empty_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _T + "null" and node.value == "" and not node.style


def parse_yaml(text: str) -> Located:
    """Parse one YAML document; syntax errors and duplicate keys become issues, never exceptions."""
    bad = _NON_PRINTABLE.search(text)
    if bad:
        out = Located(None)
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        code = f"U+{ord(bad.group()):04X}"
        out.issues.append(RecipeIssue("", line, column, f"the file contains the control character {code}, which YAML does not allow; delete it"))
        return out
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except _TooBig as e:
        return _refused(e)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = e.problem or e.context or "invalid YAML"
        if e.context and e.problem and e.problem.startswith("but "):
            what = f"{e.context}, {e.problem}"  # "expected a single document ..., but found another"
        out = Located(None)
        out.issues.append(RecipeIssue("", line, col, f"YAML syntax error: {what}{_hint(what)}"))
        return out
    except yaml.YAMLError as e:  # reader errors (control characters, bad encoding) carry no mark
        out = Located(None)
        out.issues.append(RecipeIssue("", 1, 1, f"YAML syntax error: {e}"))
        return out
    finally:
        loader.dispose()
    out = Located(None)
    if root is None:
        return out
    try:
        out.value = _Builder(out).build(root, ())
    except _TooBig as e:
        return _refused(e)
    return out


def _refused(e: _TooBig) -> Located:
    out = Located(None)
    out.issues.append(RecipeIssue("", e.line, e.column, e.message))
    return out


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording positions as it goes."""

    def __init__(self, out: Located) -> None:
        self.out = out
        self.active: set[int] = set()
        self.count = 0

    def issue(self, path: KeyPath, pos: Pos, message: str) -> None:
        self.out.issues.append(RecipeIssue(format_path(path), pos.line, pos.column, message))

    def build(self, node: Node, path: KeyPath) -> Any:
        # Aliases are expanded here, so this is where a small text can become a huge value.
        self.count += 1
        if self.count > MAX_VALUES:
            p = _pos(node)
            raise _TooBig(p.line, p.column, f"the recipe expands to more than {MAX_VALUES:,} values "
                          "(anchors and aliases that repeat each other?); write the settings out plainly")
        if len(path) > MAX_DEPTH:
            p = _pos(node)
            raise _TooBig(p.line, p.column, _too_deep())
        if not _is_empty_null(node):
            self.out.values[path] = _pos(node)
        if id(node) in self.active:
            self.issue(path, _pos(node), "an alias refers to itself; recipes cannot be recursive")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.scalar(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.issue(path, _pos(key_node), "keys must be plain names, not lists or mappings")
                continue
            key = key_node.value
            kpath = path + (key,)
            if key in first_line:
                self.issue(
                    kpath,
                    _pos(key_node),
                    f'duplicate key "{key}" (first written on line {first_line[key]}); keep only one',
                )
                continue
            first_line[key] = _pos(key_node).line
            self.out.keys[kpath] = _pos(key_node)
            result[key] = self.build(value_node, kpath)
        return result

    def scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        tag, raw = node.tag, node.value
        try:
            if tag == _T + "str":
                return raw
            if tag == _T + "null":
                return None
            if tag == _T + "bool":
                if raw.lower() not in ("true", "false"):
                    raise ValueError
                return raw.lower() == "true"
            if tag == _T + "int":
                return _to_int(raw)
            if tag == _T + "float":
                return _to_float(raw)
        except ValueError:
            self.issue(path, _pos(node), f"{raw!r} is not a valid {tag[len(_T):]}")
            return None
        self.issue(path, _pos(node), f"unsupported YAML tag {tag}; write a plain value")
        return None


def _to_int(raw: str) -> int:
    if raw.startswith("0o"):
        return int(raw[2:], 8)
    if raw.startswith("0x"):
        return int(raw[2:], 16)
    return int(raw, 10)


def _to_float(raw: str) -> float:
    low = raw.lower()
    if low in (".inf", "+.inf"):
        return math.inf
    if low == "-.inf":
        return -math.inf
    if low == ".nan":
        return math.nan
    return float(raw)
