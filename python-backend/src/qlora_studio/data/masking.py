"""The masking rule: which tokens of a rendered conversation carry loss.

docs/masking.md is the normative description (the TypeScript previewer ports it); this module is
its reference implementation, held to the shared vectors in test/fixtures/masking/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .locate import Region, locate_all, turn_name
from .rows import DataSourceError, RowError
from .templates import ChatTemplate, check_reserved, special_token_kwargs
from .tokenize import encode_pieces, insert_text, mark_messages, mark_text, special_token_texts, split_marked

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


def _overlaps(a: Region, b: Region) -> bool:
    if max(a.start, b.start) < min(a.end, b.end):
        return True
    return (b.start == b.end and a.start < b.start < a.end) or (a.start == a.end and b.start < a.start < b.end)


def _turn_start(full: str, template: ChatTemplate, messages: list[dict[str, str]], i: int,
                region: Region, tokens: dict[str, str], name: str) -> int:
    """Where assistant message ``i``'s trained span starts: right after the generation prompt when
    the template renders the conversation so far followed by that prompt, else the region start."""
    try:
        prompt = template.render(messages[:i], add_generation_prompt=False, **tokens).text
        gen = template.render(messages[:i], add_generation_prompt=True, **tokens).text
    except RowError:  # the template refuses the conversation cut before this turn
        return region.start
    if full.startswith(prompt) and region.start < len(prompt):
        raise RowError("template_mismatch", f"{name}: changing its content changes how the template "
                                            "renders the earlier messages, so it cannot be located with certainty")
    if len(gen) > len(prompt) and gen.startswith(prompt) and full.startswith(gen) and len(gen) <= region.start:
        return len(gen)
    return region.start


def assistant_spans(full: str, template: ChatTemplate, messages: list[dict[str, str]],
                    tokens: dict[str, str]) -> tuple[list[tuple[int, int]], list[bool]]:
    """Apply the rule to every assistant message: one trained character span of ``full`` per
    assistant message, in order, and per span whether EOS is inserted at its end (the template
    writes no end-of-turn marker). Raises :class:`RowError` naming the turn that cannot be located."""
    eos = tokens.get("eos_token", "")
    markers = tuple(m for m in dict.fromkeys((eos, *END_OF_TURN_MARKERS)) if m)
    regions = locate_all(full, template, messages, tokens)
    known = [r for r in regions if isinstance(r, Region)]
    spans: list[tuple[int, int]] = []
    inserted: list[bool] = []
    prev_end = 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        name = turn_name(messages, i)
        region = regions[i]
        if not isinstance(region, Region):
            raise RowError("template_mismatch", f"{name}: cannot be located: {region}")
        for j, other in enumerate(regions):
            if j != i and isinstance(other, Region) and _overlaps(region, other):
                raise RowError("template_mismatch", f"{name}: its rendered content overlaps message {j + 1}'s, "
                                                    "so it cannot be located with certainty")
        start = _turn_start(full, template, messages, i, region, tokens, name)
        if start < prev_end:
            raise RowError("template_mismatch", f"{name}: it is rendered before the end of the previous "
                                                "assistant turn, so it cannot be located with certainty")
        limit = min([r.start for r in known if r is not region and r.start >= region.end] + [len(full)])
        marker = _find_marker(full, region.end, limit, markers)
        if marker is not None:
            spans.append((start, marker[1]))
            inserted.append(False)
            prev_end = marker[1]
            continue
        if not eos:
            raise RowError("template_error", f"{name}: the template closes it with no end-of-turn token "
                                             "and the tokenizer has no eos_token")
        spans.append((start, region.end))
        inserted.append(True)
        prev_end = region.end
    return spans, inserted


def _apply_inserts(spans: list[tuple[int, int]], inserted: list[bool], eos: str) -> list[tuple[int, int]]:
    """Spans moved to the text with ``eos`` inserted at the end of every inserted span; such a
    span ends after its inserted ``eos``."""
    inserts = [end for (_, end), ins in zip(spans, inserted) if ins]

    def moved(p: int, inclusive: bool) -> int:
        return p + len(eos) * sum(1 for q in inserts if (q <= p if inclusive else q < p))

    out = []
    for (start, end), ins in zip(spans, inserted):
        if ins:
            eos_at = moved(end, False)
            out.append((min(moved(start, True), eos_at), eos_at + len(eos)))
        else:
            out.append((moved(start, True), moved(end, False)))
    return out


def _label_tokens(pieces: list[tuple[str, bool]], tokenizer: Any, spans: list[tuple[int, int]],
                  max_seq_len: int) -> tuple[list[int], list[int], list[tuple[int, int]], bool]:
    require_fast(tokenizer)
    ids, offsets = encode_pieces(tokenizer, pieces)
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is not None and len(ids) >= 2 and ids[0] == bos_id and ids[1] == bos_id:
        ids, offsets = ids[1:], offsets[1:]
    labels = [tok if any(a < e and b > s for s, e in spans) else IGNORE_INDEX
              for tok, (a, b) in zip(ids, offsets)]
    truncated = len(ids) > max_seq_len
    if truncated:
        ids, labels, offsets = ids[:max_seq_len], labels[:max_seq_len], offsets[:max_seq_len]
    return ids, labels, offsets, truncated


def require_fast(tokenizer: Any) -> None:
    """The rule needs character offsets, which only fast (Rust) tokenizers give."""
    if not getattr(tokenizer, "is_fast", False):
        raise DataSourceError(f"the masking rule needs a fast (Rust) tokenizer with offsets, but "
                             f"{type(tokenizer).__name__} is a slow Python tokenizer: give the model folder "
                             "a tokenizer.json (save the tokenizer with transformers' AutoTokenizer, "
                             "which converts it) and load it with use_fast=True")


def _no_trained(truncated: bool, max_seq_len: int) -> RowError:
    if truncated:
        return RowError("no_trained_tokens", f"no trained token is left after truncation to "
                                             f"max_seq_len={max_seq_len}; raise data.max_seq_len or "
                                             "shorten the conversation")
    return RowError("no_trained_tokens", "the conversation has no assistant message to train on")


def _pieces(full: str, compiled: ChatTemplate, messages: list[dict[str, str]], tokenizer: Any,
            tokens: dict[str, str]) -> list[tuple[str, bool]]:
    """``full`` as pieces, special-token text inside message contents marked plain (Step 2)."""
    specials = special_token_texts(tokenizer)
    marked_messages = mark_messages(messages, specials)
    if all(m["content"] == n["content"] for m, n in zip(messages, marked_messages)):
        return [(full, False)]
    marked = compiled.render(marked_messages, add_generation_prompt=False, **tokens).text
    pieces = split_marked(marked, specials)
    if "".join(p for p, _ in pieces) != full:
        raise RowError("template_mismatch", "a message contains special-token text that the template "
                                            "splits or trims, so it cannot be kept as plain text; remove "
                                            "it from the message")
    return pieces


def encode_conversation(messages: list[dict[str, str]], tokenizer: Any, template: str | ChatTemplate,
                        train_on: str, max_seq_len: int) -> Encoded:
    """Render ``messages`` with ``template`` and label the tokens per ``train_on``.

    ``train_on`` is "assistant" (every assistant message plus the end-of-turn/EOS that closes it),
    "completion" (the last assistant message only) or "all". Raises :class:`RowError` with kind
    template_error, template_mismatch or no_trained_tokens.
    """
    if train_on not in ("assistant", "completion", "all"):
        raise ValueError(f"unknown train_on {train_on!r}; use assistant, completion or all")
    require_fast(tokenizer)
    check_reserved(messages)
    compiled = template if isinstance(template, ChatTemplate) else ChatTemplate(template)
    tokens = {**special_token_kwargs(tokenizer), **compiled.clock()}
    rendered = compiled.render(messages, add_generation_prompt=False, **tokens)
    full = rendered.text
    if compiled.has_generation_tags:
        spans = list(rendered.generation_spans)
        inserted = [False] * len(spans)
    else:
        spans, inserted = assistant_spans(full, compiled, messages, tokens)
    pieces = _pieces(full, compiled, messages, tokenizer, tokens)
    eos = tokens["eos_token"]
    if any(inserted):
        pieces = insert_text(pieces, [end for (_, end), ins in zip(spans, inserted) if ins], eos)
        spans = _apply_inserts(spans, inserted, eos)
    text = "".join(p for p, _ in pieces)
    if train_on == "all":
        spans = [(0, len(text))]
    elif train_on == "completion":
        spans = spans[-1:]
    ids, labels, offsets, truncated = _label_tokens(pieces, tokenizer, spans, max_seq_len)
    if all(label == IGNORE_INDEX for label in labels):
        raise _no_trained(truncated, max_seq_len)
    return Encoded(ids, labels, text, spans, truncated, offsets)


def encode_text(raw: str, tokenizer: Any, max_seq_len: int) -> Encoded:
    """``format: text``: every token trained, BOS first when the tokenizer adds one, EOS last;
    special-token text inside the row is plain text, as in message contents."""
    tokens = special_token_kwargs(tokenizer)
    bos_id = getattr(tokenizer, "bos_token_id", None)
    probe = tokenizer("x", add_special_tokens=True)["input_ids"]
    prefix = tokens["bos_token"] if bos_id is not None and probe[:1] == [bos_id] else ""
    if not tokens["eos_token"]:
        raise TypeError("the tokenizer has no eos_token; set one so the model learns to stop")
    check_reserved([{"content": raw}])
    specials = special_token_texts(tokenizer)
    pieces = split_marked(prefix + mark_text(raw, specials) + tokens["eos_token"], specials)
    text = "".join(p for p, _ in pieces)
    spans = [(0, len(text))]
    ids, labels, offsets, truncated = _label_tokens(pieces, tokenizer, spans, max_seq_len)
    return Encoded(ids, labels, text, spans, truncated, offsets)
