"""The dataset preview: examples exactly as the trainer sees them, plus the dataset doctor."""
from __future__ import annotations

from typing import Any

from .build import compile_recipe_template, dataset_stats, encode_records, load_tokenizer
from .masking import IGNORE_INDEX, Encoded
from .packing import pack_examples, packing_stats
from .readers import read_rows
from .rows import Example, Record


def token_texts(text: str, offsets: list[tuple[int, int]]) -> list[str]:
    """The text each token adds: its offset range minus what earlier tokens already showed, so a
    character split over several byte tokens (an emoji in a byte-level BPE) is shown once."""
    out, shown = [], 0
    for a, b in offsets:
        out.append(text[max(a, shown):b])
        shown = max(shown, b)
    return out


def _example_view(record: Record, enc: Encoded) -> dict[str, Any]:
    tokens = [
        {"id": tok, "text": piece, "trained": label != IGNORE_INDEX}
        for tok, label, piece in zip(enc.input_ids, enc.labels, token_texts(enc.text, enc.offsets))
    ]
    return {
        "source": record.source,
        "line": record.line,
        "text": enc.text,
        "tokens": tokens,
        "n_tokens": len(enc.input_ids),
        "n_trained": sum(1 for t in tokens if t["trained"]),
        "truncated": enc.truncated,
    }


def preview(recipe: Any, limit: int = 50, offset: int = 0, tokenizer: Any = None) -> dict[str, Any]:
    """Encode the recipe's training data and describe examples ``[offset, offset + limit)``.

    Every row is encoded so ``bad_rows`` and ``stats`` cover the whole file; bad rows never raise
    here (the preview is where the user finds them). ``tokenizer`` may be passed to skip loading.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must be >= 0")
    data = recipe.data
    tok = tokenizer if tokenizer is not None else load_tokenizer(recipe)
    template = compile_recipe_template(recipe, tok)
    rows = read_rows(data.train, base_dir=recipe.recipe_dir, split=data.split)
    good, bad = encode_records(rows, data, tok, template)
    if getattr(data, "eval", None):  # the run reads it too: its bad rows must show here first
        eval_rows = read_rows(data.eval, base_dir=recipe.recipe_dir, split=getattr(data, "split", "train"))
        bad += encode_records(eval_rows, data, tok, template)[1]
    examples = [Example(e.input_ids, e.labels, r.source, r.line, e.truncated) for r, e in good]
    stats = dataset_stats(examples, [], bad)
    if data.packing and examples:
        stats["packing"] = packing_stats(pack_examples(examples, data.max_seq_len, int(recipe.training.seed)),
                                         data.max_seq_len)
    return {
        "examples": [_example_view(r, e) for r, e in good[offset: offset + limit]],
        "total": len(good),
        "offset": offset,
        "limit": limit,
        "bad_rows": [b.to_dict() for b in bad],
        "stats": stats,
        "template": template.source if template is not None else None,
    }
