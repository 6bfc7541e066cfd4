"""Data pipeline: readers, formats, chat templates, the masking rule, packing and the preview.

This package is the one definition of how a dataset row becomes tokens and labels; the
TypeScript previewer in ``src/dataset/`` ports it and is held to test/fixtures/masking/.
"""
from .build import DatasetBuild, build_dataset, encode_value, load_tokenizer
from .masking import IGNORE_INDEX, Encoded, encode_conversation, encode_text
from .packing import PackedSeq, pack_examples, packed_attention_mask
from .preview import preview
from .readers import read_rows
from .rows import (BAD_ROW_KINDS, BadDataError, BadRow, DataSourceError, Example, Record, RowError,
                   TemplateError)
from .templates import BUILTIN_TEMPLATES, ChatTemplate, resolve_chat_template

__all__ = [
    "BAD_ROW_KINDS", "BUILTIN_TEMPLATES", "BadDataError", "BadRow", "ChatTemplate", "DataSourceError",
    "DatasetBuild", "Encoded", "Example", "IGNORE_INDEX", "PackedSeq", "Record", "RowError",
    "TemplateError", "build_dataset", "encode_conversation", "encode_text", "encode_value",
    "load_tokenizer", "pack_examples", "packed_attention_mask", "preview", "read_rows",
    "resolve_chat_template",
]
