"""Readers: a dataset file (or a Hugging Face dataset id) -> :class:`Record` or :class:`BadRow`.

Line numbers are what an editor shows, so the dataset doctor can jump to them:

* ``.jsonl``: the file line of the record (blank lines are ignored but still counted).
* ``.json``: a list of objects; each element's line is the file line where the element starts,
  found by decoding the list one element at a time with :meth:`json.JSONDecoder.raw_decode` at
  known offsets. A ``.json`` file whose top level is an object is read as JSON Lines (a common
  mislabelling). Parsing stops at the first syntax error, which becomes one *fatal* bad row:
  the rows after it cannot be read, so ``skip_bad_rows`` cannot skip it.

Every row is decoded on its own: bytes that are not UTF-8, numbers past Python's digit limit and
absurd nesting are bad rows with their line (invalid UTF-8 also names the file's byte offset),
never an exception that ends the whole read.
* ``.csv``: a header row, then one record per row; the line is the file line where the record
  starts (quoted fields may span lines). Cells holding JSON lists/objects (e.g. ``messages``)
  are decoded by the formats, not here.
* ``.parquet``: "line" = row index + 1.
* Hugging Face dataset ids: "line" = row index + 1 of the chosen split.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from .rows import MAX_ROW_DEPTH, BadRow, DataSourceError, Record

LOCAL_EXTENSIONS = (".jsonl", ".json", ".csv", ".parquet")

RowOrBad = Union[Record, BadRow]


def _json_error_message(err: json.JSONDecodeError) -> str:
    return f"invalid JSON at column {err.colno}: {err.msg}"


def _parse_failure(err: Exception) -> tuple[str, str]:
    """(kind, message) for a JSON value that cannot be decoded even though its syntax may be fine."""
    if isinstance(err, RecursionError):
        return "too_large", (f"the row is nested too deeply to read (more than {MAX_ROW_DEPTH} levels is "
                             "refused); a chat row is a few levels deep")
    text = str(err)
    if "digits" in text:  # Python's int-string conversion limit
        return "malformed_json", "the row holds a number with thousands of digits; write it as a string or remove it"
    return "malformed_json", f"cannot decode the row: {text[:200]}"


def _utf8_message(byte_offset: int, bad: int, line_byte: int | None = None) -> str:
    where = f" (byte {line_byte + 1} of this line)" if line_byte is not None else ""
    return (f"not UTF-8 text: byte 0x{bad:02x} at byte offset {byte_offset} of the file{where}; "
            "save the file as UTF-8")


_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield one record per non-blank line; undecodable lines become bad rows with their line."""
    offset = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            start = offset
            offset += len(raw)
            body = raw[len(_BOM):] if lineno == 1 and raw.startswith(_BOM) else raw
            skipped = len(raw) - len(body)
            try:
                text = body.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                yield BadRow(source, lineno, "invalid_text",
                             _utf8_message(start + skipped + err.start, body[err.start], skipped + err.start))
                continue
            if not text:
                continue
            try:
                yield Record(source, lineno, json.loads(text))
            except json.JSONDecodeError as err:
                yield BadRow(source, lineno, "malformed_json", _json_error_message(err))
            except (RecursionError, ValueError) as err:
                yield BadRow(source, lineno, *_parse_failure(err))


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


# A byte that is not UTF-8, kept as a lone low surrogate by the "surrogateescape" decoding.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|[,:]')


def _skip_value(text: str, pos: int) -> int | None:
    """The end of the JSON value at `pos`, found without recursion (None when unbalanced)."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text, pos):
        tok = m.group()
        if tok in "[{":
            depth += 1
        elif tok in "]}":
            depth -= 1
            if depth < 0:
                return m.start()
            if depth == 0:
                return m.end()
        elif depth == 0 and tok == ",":
            return m.start()
    return None


def _byte_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode("utf-8", "surrogateescape"))


def read_json(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield the elements of a top-level JSON list with the line where each one starts."""
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    text = data.decode("utf-8", "surrogateescape")
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":
        # One object per line saved as .json: reading it as JSON Lines keeps every line number right.
        yield from read_jsonl(path, source)
        return
    if pos >= len(text) or text[pos] != "[":
        yield BadRow(source, text.count("\n", 0, pos) + 1, "malformed_json",
                     "a .json dataset must be a list of objects ([{...}, {...}]); "
                     "for one object per line use a .jsonl file", fatal=True)
        return
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    line, line_pos = 1, 0
    while True:
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        try:
            value, end = decoder.raw_decode(text, pos)
            bad = _ESCAPED_BYTE.search(text, pos, end)
            if bad:
                off = _byte_offset(text, bad.start())
                yield BadRow(source, line + text.count("\n", pos, bad.start()), "invalid_text",
                             _utf8_message(off, ord(bad.group()) - 0xDC00))
            else:
                yield Record(source, line, value)
            pos = end
        except json.JSONDecodeError as err:
            bad = _ESCAPED_BYTE.search(text, pos, err.pos + 1)
            msg = (_utf8_message(_byte_offset(text, bad.start()), ord(bad.group()) - 0xDC00) if bad
                   else _json_error_message(err))
            at = bad.start() if bad else err.pos
            yield BadRow(source, text.count("\n", 0, at) + 1, "malformed_json" if not bad else "invalid_text",
                         msg + "; the rest of the file was not read", fatal=True)
            return
        except (RecursionError, ValueError) as err:
            end_or_none = _skip_value(text, pos)
            yield BadRow(source, line, *_parse_failure(err), fatal=end_or_none is None)
            if end_or_none is None:
                return
            pos = end_or_none
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        yield BadRow(source, text.count("\n", 0, pos) + 1, "malformed_json",
                     "expected ',' or ']' after a list element; the rest of the file was not read", fatal=True)
        return


#: Cells may legitimately hold long documents; the per-row bound (data.max_seq_len) decides later.
_CSV_FIELD_LIMIT = 2**31 - 1


def read_csv(path: Path, source: str) -> Iterator[RowOrBad]:
    """Yield one dict per CSV record, keyed by the header row."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        header: list[str] | None = None
        next_line = 1
        while True:
            start = next_line
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                next_line = reader.line_num + 1
                yield BadRow(source, start, "malformed_json", f"cannot read this CSV record: {err}")
                continue
            next_line = reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue
            bad = next(((i, m) for i, cell in enumerate(row) if (m := _ESCAPED_BYTE.search(cell))), None)
            if bad is not None:
                col = header[bad[0]] if header and bad[0] < len(header) else f"#{bad[0] + 1}"
                byte = _byte_offset(row[bad[0]], bad[1].start())
                yield BadRow(source, start, "invalid_text",
                             f"not UTF-8 text: byte 0x{ord(bad[1].group()) - 0xDC00:02x} at byte {byte + 1} of "
                             f"the cell in column {col!r}; save the file as UTF-8", fatal=header is None)
                if header is None:
                    return
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
