"""Where each message's content lies in a rendered conversation, found by differential rendering.

A chat template may render a message differently depending on where it stands (reasoning kept only
after the last user query, a system message moved into the last user turn, whitespace trimmed), so
the rule never assumes that rendering a prefix of the conversation gives a prefix of the text.
Instead it renders the conversation again with one message's content replaced by a probe string
and takes the region of the real text that changes. docs/masking.md ("Step 1") is normative.
"""
from __future__ import annotations

from dataclasses import dataclass

from .rows import RowError
from .templates import ChatTemplate

#: The probe content: noncharacters (which message contents may not hold, see templates.RESERVED)
#: around letters of both cases, so a template that changes case does not render it as written.
PROBE = "\ufdd4aB\ufdd5"


@dataclass(frozen=True)
class Region:
    """``full[start:end]`` is what changes with the message's content; the probe render's
    ``tail`` (the text after the probe) is what follows the content in ``full``."""

    start: int
    end: int
    tail: str


def _prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _suffix_len(a: str, b: str, limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def turn_name(messages: list[dict[str, str]], i: int) -> str:
    """'assistant turn K (message M)' (both 1-based), as bad-row reasons name a turn."""
    k = sum(1 for m in messages[: i + 1] if m["role"] == "assistant")
    return f"assistant turn {k} (message {i + 1})"


def locate(full: str, template: ChatTemplate, messages: list[dict[str, str]], i: int,
           tokens: dict[str, str]) -> Region | str:
    """The region of message ``i`` in ``full``, or a sentence saying why it cannot be located."""
    msgs = [dict(m) for m in messages]
    msgs[i]["content"] = PROBE
    try:
        probed = template.render(msgs, add_generation_prompt=False, **tokens).text
    except RowError:
        return "the template raises when this message's content is replaced by another text"
    if probed.count(PROBE[0]) != 1 or probed.count(PROBE[-1]) != 1 or PROBE not in probed:
        return "the template does not render this message's content exactly once, as written"
    tail = probed[probed.index(PROBE) + len(PROBE):]
    start = _prefix_len(full, probed)
    end = len(full) - _suffix_len(full, probed, len(full) - start)
    if not full.endswith(tail) or end != len(full) - len(tail):
        return "the text the template writes after this message's content depends on the content"
    return Region(start, end, tail)


def locate_all(full: str, template: ChatTemplate, messages: list[dict[str, str]],
               tokens: dict[str, str]) -> list[Region | str]:
    """:func:`locate` for every message, in message order."""
    return [locate(full, template, messages, i, tokens) for i in range(len(messages))]
