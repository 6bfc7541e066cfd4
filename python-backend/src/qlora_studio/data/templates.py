"""Chat templates: resolving the recipe's ``data.chat_template`` and rendering it.

Rendering follows the environment transformers uses for ``apply_chat_template`` (a sandboxed
Jinja environment with ``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, ``raise_exception``,
``strftime_now`` and a ``tojson`` that does not escape HTML), so a template renders the same text
here as in transformers. We render ourselves instead of calling the tokenizer because the masking
rule works on strings (see docs/masking.md).

``{% generation %} ... {% endgeneration %}`` blocks (TRL / SmolLM3 training templates) render their
content; the character spans they produced are reported in :attr:`Rendered.generation_spans`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .rows import RowError, TemplateError

BUILTIN_DIR = Path(__file__).with_name("builtin_templates")
#: Names accepted by ``data.chat_template`` besides "tokenizer", paths and inline Jinja.
BUILTIN_TEMPLATES = ("chatml", "llama3", "mistral", "gemma", "phi3", "qwen")

# Noncharacters never found in real text mark where a generation block starts and ends.
_GEN_OPEN = "\ufdd0"
_GEN_CLOSE = "\ufdd1"
#: Characters message contents may not hold (markers and probes of the masking rule).
RESERVED = re.compile("[\ufdd0-\ufdef]")


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}`` renders its body between markers that :meth:`ChatTemplate.render` removes."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

    def _mark(self, caller: Any) -> str:
        return _GEN_OPEN + caller() + _GEN_CLOSE


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@dataclass(frozen=True)
class Rendered:
    """A rendered conversation and the spans of its ``{% generation %}`` blocks."""

    text: str
    generation_spans: tuple[tuple[int, int], ...]


class ChatTemplate:
    """A compiled chat template; compile once, render many conversations."""

    def __init__(self, source: str, name: str = "<inline>", now: datetime | None = None):
        self.source = source
        self.name = name
        #: The time ``strftime_now`` renders; None means the time of each encode (see :meth:`clock`).
        self.now = now
        self.has_generation_tags = re.search(r"\{%-?\s*generation\s*-?%\}", source) is not None
        try:
            self._template = _environment().from_string(source)
        except jinja2.exceptions.TemplateSyntaxError as err:
            raise TemplateError(f"chat template {name}: line {err.lineno}: {err.message}") from err

    def clock(self) -> dict[str, Any]:
        """Render arguments that fix ``strftime_now`` to one instant (``now`` or the present), so
        every render of one conversation shows the same date."""
        instant = self.now or datetime.now()
        return {"strftime_now": lambda fmt: instant.strftime(fmt)}

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool,
               bos_token: str | None = "", eos_token: str | None = "", **extra: Any) -> Rendered:
        """Render ``messages``; a template that raises becomes ``RowError('template_error')``."""
        try:
            raw = self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt,
                bos_token=bos_token or "", eos_token=eos_token or "", **extra,
            )
        except jinja2.exceptions.TemplateError as err:
            raise RowError("template_error", f"chat template {self.name} raised: {err}") from err
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise RowError("template_error", f"chat template {self.name} failed: {err}") from err
        return _strip_generation_marks(raw)


def check_reserved(messages: list[dict[str, Any]]) -> None:
    """Message contents may not hold the noncharacters U+FDD0..U+FDEF: the rule uses them as
    markers and probes. Raises ``RowError('template_error')`` naming the message."""
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, str) and RESERVED.search(content):
            raise RowError("template_error", f"message {i + 1} contains a reserved character "
                                             "(U+FDD0..U+FDEF, Unicode noncharacters); remove it")


def literal_text(source: str) -> str:
    """The template's literal text (raw text and string constants), joined by NUL characters."""
    ast = _environment().parse(source)
    parts = {n.data for n in ast.find_all(jinja2.nodes.TemplateData)}
    parts |= {n.value for n in ast.find_all(jinja2.nodes.Const) if isinstance(n.value, str)}
    return "\0".join(sorted(parts))


def _strip_generation_marks(raw: str) -> Rendered:
    if _GEN_OPEN not in raw:
        return Rendered(raw, ())
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    starts: list[int] = []
    length = 0
    for piece in re.split(f"([{_GEN_OPEN}{_GEN_CLOSE}])", raw):
        if piece == _GEN_OPEN:
            starts.append(length)
        elif piece == _GEN_CLOSE:
            spans.append((starts.pop() if starts else 0, length))
        else:
            out.append(piece)
            length += len(piece)
    return Rendered("".join(out), tuple(sorted(spans)))


def builtin_template_source(name: str) -> str:
    """The Jinja source of a built-in template (see ``BUILTIN_TEMPLATES``)."""
    if name not in BUILTIN_TEMPLATES:
        raise TemplateError(f"unknown built-in chat template {name!r}; built-ins: {', '.join(BUILTIN_TEMPLATES)}")
    return (BUILTIN_DIR / f"{name}.jinja").read_text(encoding="utf-8")


def _tokenizer_template(tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # some tokenizers ship several named templates
        template = template.get("default") or next(iter(template.values()), None)
    if not template:
        raise TemplateError(
            "data.chat_template is 'tokenizer' but the tokenizer has no chat template; set "
            f"data.chat_template to a built-in ({', '.join(BUILTIN_TEMPLATES)}), a .jinja file "
            "or inline Jinja"
        )
    return template


def template_name(spec: str) -> str:
    """How messages name the template of ``data.chat_template``: "from the tokenizer", the built-in
    name or path as written, or "(inline)" for inline Jinja (whatever its length)."""
    if spec == "tokenizer":
        return "from the tokenizer"
    return "(inline)" if "{{" in spec or "{%" in spec else spec


def resolve_chat_template(spec: str, tokenizer: Any, recipe_dir: str | Path | None) -> str:
    """Turn ``data.chat_template`` into Jinja source.

    ``spec`` is "tokenizer" (the tokenizer's own template), a built-in name, inline Jinja (it
    contains ``{{`` or ``{%``) or a path to a template file, relative to ``recipe_dir``. The result
    is compiled once so a syntax error is reported here, with its line.
    """
    if spec == "tokenizer":
        source, name = _tokenizer_template(tokenizer), "from the tokenizer"
    elif spec in BUILTIN_TEMPLATES:
        source, name = builtin_template_source(spec), spec
    elif "{{" in spec or "{%" in spec:
        source, name = spec, template_name(spec)
    else:
        path = Path(spec).expanduser()
        if not path.is_absolute() and recipe_dir is not None:
            path = Path(recipe_dir) / path
        if not path.is_file():
            raise TemplateError(
                f"data.chat_template {spec!r} is not 'tokenizer', not a built-in "
                f"({', '.join(BUILTIN_TEMPLATES)}), not inline Jinja and not an existing file "
                f"(looked for {path})"
            )
        source, name = path.read_text(encoding="utf-8"), str(spec)
    ChatTemplate(source, name)
    return source


def special_token_kwargs(tokenizer: Any) -> dict[str, str]:
    """The special tokens templates read (missing ones render as an empty string)."""
    return {
        "bos_token": getattr(tokenizer, "bos_token", None) or "",
        "eos_token": getattr(tokenizer, "eos_token", None) or "",
        "pad_token": getattr(tokenizer, "pad_token", None) or "",
        "unk_token": getattr(tokenizer, "unk_token", None) or "",
    }
