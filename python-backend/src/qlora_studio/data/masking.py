"""The masking rule: which tokens of a rendered conversation carry loss.

docs/masking.md is the normative description (the TypeScript previewer ports it); this module is
its reference implementation, held to the shared vectors in test/fixtures/masking/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .rows import RowError
from .templates import ChatTemplate, special_token_kwargs

IGNORE_INDEX = -100

#: End-of-turn markers of common chat formats; the tokenizer's eos_token is always added.
END_OF_TURN_MARKERS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>",
                       "<|endoftext|>", "<|end_of_text|>", "<eos>")


@dataclass(frozen=True)
class Encoded:
    """A conversation as the trainer sees it; ``offsets`` are each token's character span in ``text``."""

    input_ids: list[int]
    labels: list[int]
    text: str
    trained_spans: list[tuple[int, int]]
    truncated: bool
    offsets: list[tuple[int, int]] = field(default_factory=list)


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _find_marker(text: str, start: int, end: int, markers: tuple[str, ...]) -> tuple[int, int] | None:
    """Earliest marker wholly inside text[start:end]; the longest wins a tie. Returns (pos, end)."""
    best: tuple[int, int] | None = None
    for marker in markers:
        pos = text.find(marker, start, end)
        if pos < 0:
            continue
        cand = (pos, pos + len(marker))
        if best is None or cand[0] < best[0] or (cand[0] == best[0] and cand[1] > best[1]):
            best = cand
    return best


def _locate_turn(full: str, template: ChatTemplate, messages: list[dict[str, str]], i: int,
                 cursor: int, tokens: dict[str, str]) -> tuple[int, int]:
    """(start, region_end) of assistant message ``i``'s output inside ``full``."""
    before = template.render(messages[:i], add_generation_prompt=True, **tokens).text
    after = template.render(messages[: i + 1], add_generation_prompt=False, **tokens).text
    if full.startswith(before) and after.startswith(before):
        return len(before), _common_prefix_len(after, full)
    # Templates whose generation prompt differs from how they render a finished turn: find the
    # content itself, after the previous assistant turn.
    content = messages[i]["content"].strip()
    pos = full.find(content, cursor) if content else -1
    if pos < 0:
        raise RowError("template_mismatch",
                       f"cannot find assistant message {i + 1} in the rendered text: the template's "
                       "generation prompt is not a prefix of the rendered conversation and the "
                       "content does not appear verbatim")
    region_end = len(full)
    for later in messages[i + 1:]:
        nxt = later["content"].strip()
        found = full.find(nxt, pos + len(content)) if nxt else -1
        if found >= 0:
            region_end = found
            break
    return pos, region_end


def assistant_spans(full: str, template: ChatTemplate, messages: list[dict[str, str]],
                    tokens: dict[str, str]) -> tuple[str, list[tuple[int, int]]]:
    """Apply the rule to every assistant message: the final text (EOS inserted where the template
    emits none) and one trained character span per assistant message, in order."""
    eos = tokens.get("eos_token", "")
    markers = tuple(m for m in dict.fromkeys((eos, *END_OF_TURN_MARKERS)) if m)
    raw_spans: list[tuple[int, int, bool]] = []
    inserts: list[int] = []
    cursor = 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start0, region_end = _locate_turn(full, template, messages, i, cursor, tokens)
        seg = full[start0:region_end]
        content = msg["content"].strip()
        at = seg.find(content) if content else -1
        if at >= 0:
            start, content_end = start0 + at, start0 + at + len(content)
        else:
            start = start0 + len(seg) - len(seg.lstrip())
            content_end = start
        marker = _find_marker(full, content_end, region_end, markers)
        if marker is None:
            if not eos:
                raise RowError("template_error", "the template closes no assistant turn with an "
                                                 "end-of-turn token and the tokenizer has no eos_token")
            insert_at = max(content_end, start0 + len(seg.rstrip()))
            inserts.append(insert_at)
            raw_spans.append((start, insert_at, True))
            cursor = max(cursor, region_end)
            continue
        raw_spans.append((start, marker[1], False))
        cursor = max(cursor, region_end)
    if not inserts:
        return full, [(s, e) for s, e, _ in raw_spans]
    pieces, prev = [], 0
    for pos in inserts:
        pieces += [full[prev:pos], eos]
        prev = pos
    pieces.append(full[prev:])

    def moved(p: int, inclusive: bool) -> int:
        # Where old position p lands once EOS is inserted at each insert point before it.
        return p + len(eos) * sum(1 for q in inserts if (q <= p if inclusive else q < p))

    spans = []
    for start, end, inserted in raw_spans:
        if inserted:
            eos_at = moved(end, False)
            spans.append((min(moved(start, True), eos_at), eos_at + len(eos)))
        else:
            spans.append((moved(start, True), moved(end, False)))
    return "".join(pieces), spans


def _label_tokens(text: str, tokenizer: Any, spans: list[tuple[int, int]],
                  max_seq_len: int) -> tuple[list[int], list[int], list[tuple[int, int]], bool]:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("the masking rule needs a fast (Rust) tokenizer with offset mapping; "
                        "this tokenizer is a slow Python one: provide a tokenizer.json")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is not None and len(ids) >= 2 and ids[0] == bos_id and ids[1] == bos_id:
        ids, offsets = ids[1:], offsets[1:]
    labels = []
    for tok, (a, b) in zip(ids, offsets):
        trained = any((a < e and b > s) if a < b else (s <= a < e) for s, e in spans)
        labels.append(tok if trained else IGNORE_INDEX)
    truncated = len(ids) > max_seq_len
    if truncated:
        ids, labels, offsets = ids[:max_seq_len], labels[:max_seq_len], offsets[:max_seq_len]
    return ids, labels, offsets, truncated


def _no_trained(truncated: bool, max_seq_len: int) -> RowError:
    if truncated:
        return RowError("no_trained_tokens", f"no trained token is left after truncation to "
                                             f"max_seq_len={max_seq_len}; raise data.max_seq_len or "
                                             "shorten the conversation")
    return RowError("no_trained_tokens", "the conversation has no assistant message to train on")


def encode_conversation(messages: list[dict[str, str]], tokenizer: Any, template: str | ChatTemplate,
                        train_on: str, max_seq_len: int) -> Encoded:
    """Render ``messages`` with ``template`` and label the tokens per ``train_on``.

    ``train_on`` is "assistant" (every assistant message plus the end-of-turn/EOS that closes it),
    "completion" (the last assistant message only) or "all". Raises :class:`RowError` with kind
    template_error, template_mismatch or no_trained_tokens.
    """
    if train_on not in ("assistant", "completion", "all"):
        raise ValueError(f"unknown train_on {train_on!r}; use assistant, completion or all")
    compiled = template if isinstance(template, ChatTemplate) else ChatTemplate(template)
    tokens = special_token_kwargs(tokenizer)
    full = compiled.render(messages, add_generation_prompt=False, **tokens).text
    text, spans = assistant_spans(full, compiled, messages, tokens)
    if train_on == "all":
        spans = [(0, len(text))]
    elif train_on == "completion":
        spans = spans[-1:]
    ids, labels, offsets, truncated = _label_tokens(text, tokenizer, spans, max_seq_len)
    if all(label == IGNORE_INDEX for label in labels):
        raise _no_trained(truncated, max_seq_len)
    return Encoded(ids, labels, text, spans, truncated, offsets)


def encode_text(raw: str, tokenizer: Any, max_seq_len: int) -> Encoded:
    """``format: text``: every token trained, BOS first when the tokenizer adds one, EOS last."""
    tokens = special_token_kwargs(tokenizer)
    bos_id = getattr(tokenizer, "bos_token_id", None)
    probe = tokenizer("x", add_special_tokens=True)["input_ids"]
    prefix = tokens["bos_token"] if bos_id is not None and probe[:1] == [bos_id] else ""
    if not tokens["eos_token"]:
        raise TypeError("the tokenizer has no eos_token; set one so the model learns to stop")
    text = prefix + raw + tokens["eos_token"]
    spans = [(0, len(text))]
    ids, labels, offsets, truncated = _label_tokens(text, tokenizer, spans, max_seq_len)
    return Encoded(ids, labels, text, spans, truncated, offsets)
