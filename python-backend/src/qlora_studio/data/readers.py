"""Readers: a dataset file (or a Hugging Face dataset id) -> :class:`Record` or :class:`BadRow`.

Line numbers are what an editor shows, so the dataset doctor can jump to them:

* ``.jsonl``: the file line of the record (blank lines are ignored but still counted).
* ``.json``: a list of objects; each element's line is the file line where the element starts,
  found by decoding the list one element at a time with :meth:`json.JSONDecoder.raw_decode` at
  known offsets. A ``.json`` file whose top level is an object is read as JSON Lines (a common
  mislabelling). Parsing stops at the first syntax error, which becomes one ``malformed_json`` bad
  row saying that the rest of the file was not read.
* ``.csv``: a header row, then one record per row; the line is the file line where the record
  starts (quoted fields may span lines). Cells holding JSON lists/objects (e.g. ``messages``)
  are decoded by the formats, not here.
* ``.parquet``: "line" = row index + 1.
* Hugging Face dataset ids: "line" = row index + 1 of the chosen split.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from .rows import BadRow, DataSourceError, Record

LOCAL_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet")

RowOrBad = Union[Record, BadRow]


def _json_error_message(err: json.JSONDecodeError) -> str:
    return f"invalid JSON at column {err.colno}: {err.msg}"


def read_jsonl(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield one record per non-blank line; undecodable lines become ``malformed_json``."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                yield Record(source, lineno, json.loads(text))
            except json.JSONDecodeError as err:
                yield BadRow(source, lineno, "malformed_json", _json_error_message(err))


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def read_json(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield the elements of a top-level JSON list with the line where each one starts."""
    text = path.read_text(encoding="utf-8-sig")
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":
        # One object per line saved as .json: reading it as JSON Lines keeps every line number right.
        yield from read_jsonl(path, source)
        return
    if pos >= len(text) or text[pos] != "[":
        yield BadRow(source, text.count("\n", 0, pos) + 1, "malformed_json",
                     "a .json dataset must be a list of objects ([{...}, {...}]); "
                     "for one object per line use a .jsonl file")
        return
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            yield BadRow(source, err.lineno, "malformed_json",
                         _json_error_message(err) + "; the rest of the file was not read")
            return
        yield Record(source, line, value)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        yield BadRow(source, text.count("\n", 0, pos) + 1, "malformed_json",
                     "expected ',' or ']' after a list element; the rest of the file was not read")
        return


def read_csv(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield one dict per CSV record, keyed by the header row."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        next_line = 1
        for row in reader:
            start = next_line
            next_line = reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [h.strip() for h in row]
                continue
            if len(row) != len(header):
                yield BadRow(source, start, "missing_field",
                             f"this row has {len(row)} cells but the header has {len(header)} columns")
                continue
            yield Record(source, start, dict(zip(header, row)))


def read_parquet(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield the rows of a Parquet file as dicts; the line is the row index + 1."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataSourceError(f"{source}: cannot read the Parquet file: {err}") from err
    for index, row in enumerate(table.to_pylist()):
        yield Record(source, index + 1, row)


def read_hub(dataset_id: str, split: str) -> Iterator[RowOrBad]:
    """Yield the rows of a Hugging Face dataset split (needs the optional `datasets` package)."""
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as err:
        raise DataSourceError(
            f"'{dataset_id}' is not a local file, so it is read as a Hugging Face dataset id, which "
            "needs the optional 'datasets' package: pip install 'qlora-studio[hub]' "
            "(or point data.train at a local .jsonl/.json/.csv/.parquet file)"
        ) from err
    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # network errors, unknown ids and bad splits all land here
        raise DataSourceError(
            f"cannot load the Hugging Face dataset '{dataset_id}' (split '{split}'): {err}. "
            "Check the id, the split and your network, or use a local file."
        ) from err
    for index, row in enumerate(ds):
        yield Record(dataset_id, index + 1, dict(row))


def _guarded(rows: Iterator[RowOrBad], source: str) -> Iterator[RowOrBad]:
    """Turn I/O and encoding failures mid-file into one clear DataSourceError."""
    try:
        yield from rows
    except UnicodeDecodeError as err:
        raise DataSourceError(f"{source}: the file is not UTF-8 text (byte {err.start}: {err.reason}); "
                              "save it as UTF-8") from err
    except OSError as err:
        raise DataSourceError(f"{source}: cannot read the file: {err.strerror or err}") from err


def local_data_path(spec: str, base_dir: Path | None) -> Path | None:
    """The file ``spec`` names (relative to ``base_dir``) when it is meant as a local file, even a
    missing one; None when it reads as a hub dataset id."""
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.exists() or path.suffix.lower() in LOCAL_EXTENSIONS or spec.startswith((".", "/", "~")):
        return path
    return None


def read_rows(spec: str, *, base_dir: Path | None, split: str = "train",
              display: str | None = None) -> Iterator[RowOrBad]:
    """Read a local file (by extension) or, when ``spec`` is no local path, a hub dataset id.

    ``display`` is the name used as ``source`` in records and bad rows (default: ``spec``).
    """
    local = local_data_path(spec, base_dir)
    path = local if local is not None else Path(spec)
    source = display or spec
    suffix = path.suffix.lower()
    if local is not None and path.is_file():
        readers = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".parquet": read_parquet}
        reader = readers.get(suffix)
        if reader is None:
            raise DataSourceError(
                f"{source}: unsupported file type '{suffix or '(none)'}'; "
                f"use one of {', '.join(LOCAL_EXTENSIONS)}"
            )
        return _guarded(reader(path, source), source)
    if local is not None:
        raise DataSourceError(f"{source}: file not found (looked for {path}); "
                              "paths are relative to the recipe's folder")
    return read_hub(spec, split)
