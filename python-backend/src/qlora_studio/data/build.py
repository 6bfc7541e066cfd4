"""From a recipe to tokenized train/eval examples: tokenizer, rows, formats, masking, bad rows."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .formats import row_to_conversation
from .masking import Encoded, encode_conversation, encode_text, require_fast
from .readers import read_rows
from .rows import BadDataError, BadRow, DataSourceError, Example, Record, RowError, inspect_value
from .templates import ChatTemplate, resolve_chat_template, template_name

if TYPE_CHECKING:
    from ..recipe import Recipe


@dataclass
class DatasetBuild:
    """The result of :func:`build_dataset`; ``skipped`` counts bad rows left out."""

    train: list[Example]
    eval: list[Example]
    bad_rows: list[BadRow]
    skipped: int
    stats: dict[str, Any] = field(default_factory=dict)


def _model_ref(recipe: Recipe) -> tuple[str, bool]:
    """The tokenizer source as a string, and whether it is a local folder."""
    ref = recipe.tokenizer_location()
    return ref, Path(ref).is_absolute()


def load_tokenizer(recipe: Recipe) -> Any:
    """AutoTokenizer for ``recipe.tokenizer or recipe.base_model`` with the recipe's chat template.

    A missing pad token is set to the EOS token; the masking rule trains EOS even then, because
    labels come from the rule, never from "not padding". The chat template is resolved from
    ``data.chat_template`` (for ``format: text`` only when it can be, since text needs none).
    """
    from transformers import AutoTokenizer

    ref, local = _model_ref(recipe)
    kwargs: dict[str, Any] = {"trust_remote_code": recipe.trust_remote_code}
    if not local and recipe.revision and not recipe.tokenizer:
        kwargs["revision"] = recipe.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref, **kwargs)
    except Exception as err:  # OSError for missing files/network, ValueError for unknown classes
        where = "local folder" if local else "Hugging Face id (not a local folder relative to the recipe)"
        raise DataSourceError(f"cannot load the tokenizer from {ref} ({where}): {err}") from err
    require_fast(tokenizer)
    if not getattr(tokenizer, "eos_token", None):
        raise DataSourceError(f"the tokenizer from {ref} has no eos_token; the model could never learn "
                              "to stop. Set eos_token in its tokenizer_config.json")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = recipe.data
    try:
        tokenizer.chat_template = resolve_chat_template(data.chat_template, tokenizer, recipe.recipe_dir)
    except Exception:
        if data.format != "text":
            raise
    return tokenizer


#: A token is rarely longer than a few characters; a row holding this many characters per token of
#: max_seq_len would be mostly cut away, so it is refused before tokenizing (which would cost
#: memory and time in proportion to the whole row).
MAX_CHARS_PER_TOKEN = 64


def check_row_size(value: Any, max_seq_len: int) -> None:
    """Refuse, in one pass and without tokenizing, a row too deep, undecodable or far too long."""
    chars, problem = inspect_value(value)
    if problem is not None:
        raise problem
    limit = int(max_seq_len) * MAX_CHARS_PER_TOKEN
    if chars > limit:
        raise RowError("too_large", f"the row holds {chars:,} characters, far more than data.max_seq_len "
                       f"({max_seq_len} tokens, about {limit:,} characters at most) can train on; split it "
                       "into several rows or shorten it")


def encode_value(value: Any, data: Any, tokenizer: Any, template: ChatTemplate | None) -> Encoded:
    """Encode one raw row per ``data.format``; raises :class:`RowError` for a bad row."""
    check_row_size(value, data.max_seq_len)
    conv = row_to_conversation(value, data)
    if isinstance(conv, str):
        return encode_text(conv, tokenizer, data.max_seq_len)
    assert template is not None
    return encode_conversation(conv, tokenizer, template, data.train_on, data.max_seq_len)


def encode_records(rows: Iterable[Record | BadRow], data: Any, tokenizer: Any,
                   template: ChatTemplate | None) -> tuple[list[tuple[Record, Encoded]], list[BadRow]]:
    """Encode every record; each failure becomes a :class:`BadRow` with the record's file and line."""
    good: list[tuple[Record, Encoded]] = []
    bad: list[BadRow] = []
    for row in rows:
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        try:
            good.append((row, encode_value(row.value, data, tokenizer, template)))
        except RowError as err:
            bad.append(BadRow(row.source, row.line, err.kind, err.message))
        except (RecursionError, UnicodeError) as err:  # whatever a hostile row reaches, it stays one bad row
            kind = "too_large" if isinstance(err, RecursionError) else "invalid_text"
            bad.append(BadRow(row.source, row.line, kind, f"cannot encode this row: {str(err)[:200]}"))
    return good, bad


def compile_recipe_template(recipe: Recipe, tokenizer: Any) -> ChatTemplate | None:
    """The compiled chat template of a recipe, or None for ``format: text``."""
    data = recipe.data
    if data.format == "text":
        return None
    return ChatTemplate(resolve_chat_template(data.chat_template, tokenizer, recipe.recipe_dir),
                        template_name(str(data.chat_template)))


def _to_example(record: Record, enc: Encoded) -> Example:
    return Example(enc.input_ids, enc.labels, record.source, record.line, enc.truncated)


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out round(n * fraction) examples (at least one, leaving one to train), chosen by seed."""
    n = len(examples)
    if fraction <= 0 or n < 2:
        return examples, []
    k = min(n - 1, max(1, round(n * fraction)))
    held = set(random.Random(seed).sample(range(n), k))
    return ([e for i, e in enumerate(examples) if i not in held],
            [e for i, e in enumerate(examples) if i in held])


def dataset_stats(train: list[Example], eval_: list[Example], bad_rows: list[BadRow]) -> dict[str, Any]:
    """Counts the preview and the run log show."""
    lengths = [len(e.input_ids) for e in train]
    return {
        "train_examples": len(train),
        "eval_examples": len(eval_),
        "bad_rows": len(bad_rows),
        "bad_rows_by_kind": dict(Counter(b.kind for b in bad_rows)),
        "tokens": sum(lengths),
        "trained_tokens": sum(e.n_trained for e in train),
        "truncated": sum(1 for e in train if e.truncated),
        "max_len": max(lengths, default=0),
        "mean_len": (sum(lengths) / len(lengths)) if lengths else 0.0,
    }


def build_dataset(recipe: Recipe, tokenizer: Any) -> DatasetBuild:
    """Read, format, template, mask and split the recipe's data.

    Raises :class:`BadDataError` listing every bad row unless ``data.skip_bad_rows``; raises
    :class:`DataSourceError` when no example is usable at all.
    """
    data = recipe.data
    template = compile_recipe_template(recipe, tokenizer)
    rows = read_rows(data.train, base_dir=recipe.recipe_dir, split=data.split)
    good, bad = encode_records(rows, data, tokenizer, template)
    train = [_to_example(r, e) for r, e in good]
    if data.eval:
        eval_rows = read_rows(data.eval, base_dir=recipe.recipe_dir, split=data.split)
        eval_good, eval_bad = encode_records(eval_rows, data, tokenizer, template)
        bad += eval_bad
        eval_ = [_to_example(r, e) for r, e in eval_good]
    else:
        train, eval_ = _split(train, data.eval_split, recipe.training.seed)
    if bad and (not data.skip_bad_rows or any(b.fatal for b in bad)):
        raise BadDataError(bad if not data.skip_bad_rows else [b for b in bad if b.fatal])
    if not train:
        raise DataSourceError(f"{data.train}: no usable training example"
                              + (f" ({len(bad)} bad row(s) skipped)" if bad else ""))
    return DatasetBuild(train, eval_, bad, len(bad), dataset_stats(train, eval_, bad))
