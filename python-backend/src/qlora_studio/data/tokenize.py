"""Tokenizing a rendered conversation so that only the template writes control tokens.

Special tokens written inside a message's content (``<|eot_id|>``, ``<|im_end|>``, ``</s>``) are
ordinary text: they are wrapped in markers before rendering, and the marked pieces of the rendered
text are encoded with special-token matching off. docs/masking.md ("Step 2") is normative; when
no message holds such text this is exactly one encode of the whole text.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .rows import RowError

#: Markers around a special token found in a message's content (noncharacters, see RESERVED).
MARK_OPEN = "\ufdd8"
MARK_CLOSE = "\ufdd9"


def special_token_texts(tokenizer: Any) -> tuple[str, ...]:
    """The tokenizer's added tokens flagged special, longest first (ties by text)."""
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    texts = {tok.content for tok in decoder.values() if getattr(tok, "special", False) and tok.content}
    return tuple(sorted(texts, key=lambda t: (-len(t), t)))


@lru_cache(maxsize=64)
def _pattern(tokens: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(re.escape(t) for t in tokens)) if tokens else None


def mark_text(text: str, tokens: tuple[str, ...]) -> str:
    """``text`` with every special-token occurrence wrapped in markers (leftmost match first, the
    longest token at a position wins)."""
    pattern = _pattern(tokens)
    return text if pattern is None else pattern.sub(lambda x: MARK_OPEN + x.group(0) + MARK_CLOSE, text)


def mark_messages(messages: list[dict[str, str]], tokens: tuple[str, ...]) -> list[dict[str, str]]:
    """Each message with :func:`mark_text` applied to its content."""
    return [dict(m, content=mark_text(m["content"], tokens)) for m in messages]


@lru_cache(maxsize=64)
def _splitter(tokens: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _pattern(tokens)
    inner = pattern.pattern if pattern is not None else "(?!)"
    return re.compile(f"{MARK_OPEN}({inner}){MARK_CLOSE}|[{MARK_OPEN}{MARK_CLOSE}]")


def split_marked(marked: str, tokens: tuple[str, ...]) -> list[tuple[str, bool]]:
    """The rendered text as pieces ``(text, plain)``: ``plain`` pieces are marked special tokens;
    a lone marker (the template split a marked string) is dropped but still ends a piece."""
    splitter = _splitter(tokens)
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in splitter.finditer(marked):
        pieces.append((marked[last:match.start()], False))
        if match.group(1) is not None:
            pieces.append((match.group(1), True))
        last = match.end()
    pieces.append((marked[last:], False))
    return pieces


def _encode(tokenizer: Any, text: str, plain: bool) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=plain)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def encode_pieces(tokenizer: Any, pieces: list[tuple[str, bool]]) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and character offsets (into the joined text) of the pieces, encoded one by one.

    The first piece is encoded as it is; every later non-empty piece is encoded after a "\\n" whose
    tokens are then removed (so a SentencePiece tokenizer adds no word-start space), unless its
    encoding does not begin with the tokens of "\\n" alone, then it is encoded as it is.
    """
    newline_ids, _ = _encode(tokenizer, "\n", False)
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    at = 0
    for k, (text, plain) in enumerate(pieces):
        if k > 0 and not text:
            continue
        shift = at
        if k == 0:
            piece_ids, piece_offsets = _encode(tokenizer, text, plain)
        else:
            piece_ids, piece_offsets = _encode(tokenizer, "\n" + text, plain)
            if newline_ids and piece_ids[: len(newline_ids)] == newline_ids:
                piece_ids, piece_offsets = piece_ids[len(newline_ids):], piece_offsets[len(newline_ids):]
                shift -= 1
            else:
                piece_ids, piece_offsets = _encode(tokenizer, text, plain)
        ids += piece_ids
        offsets += [(max(a + shift, at), max(b + shift, at)) for a, b in piece_offsets]
        at += len(text)
    return ids, offsets


def insert_text(pieces: list[tuple[str, bool]], inserts: list[int], text: str) -> list[tuple[str, bool]]:
    """``text`` inserted (as template text) at each position of ``inserts`` (positions in the
    joined pieces before any insertion), from the last to the first: the first piece whose
    ``[start, end]`` holds the position takes it, or, when that piece is plain, a new piece
    right after it does."""
    out = [list(p) for p in pieces]
    for q in sorted(inserts, reverse=True):
        at = 0
        for idx, (piece, plain) in enumerate(out):
            end = at + len(piece)
            if at <= q <= end:
                if not plain:
                    out[idx][0] = piece[: q - at] + text + piece[q - at:]
                elif q == end:
                    out.insert(idx + 1, [text, False])
                else:
                    raise RowError("template_error", "internal: an EOS insertion point lies inside "
                                                     "special-token text of a message")
                break
            at = end
        else:
            raise RowError("template_error", "internal: an EOS insertion point lies outside the text")
    return [(p, bool(plain)) for p, plain in out]
