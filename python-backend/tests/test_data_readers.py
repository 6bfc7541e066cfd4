"""Readers: every file type yields records with the line an editor shows."""
from __future__ import annotations

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qlora_studio.data import BadRow, DataSourceError, Record, read_rows
from test_data_support import DATA


def _split(rows):
    rows = list(rows)
    return [r for r in rows if isinstance(r, Record)], [r for r in rows if isinstance(r, BadRow)]


def test_jsonl_lines_are_file_lines_and_blank_lines_are_ignored():
    good, bad = _split(read_rows("chat_good.jsonl", base_dir=DATA))
    assert [r.line for r in good] == [1, 3]
    assert bad == []
    assert good[1].value["messages"][0]["content"] == "Name a prime."
    assert good[0].source == "chat_good.jsonl"


def test_jsonl_malformed_line_is_a_bad_row_with_its_line():
    good, bad = _split(read_rows("bad_rows.jsonl", base_dir=DATA))
    assert [(b.line, b.kind) for b in bad] == [(2, "malformed_json")]
    assert "column" in bad[0].message
    assert 10 not in [r.line for r in good] and 11 in [r.line for r in good]


def test_json_list_elements_get_the_line_where_they_start():
    good, bad = _split(read_rows("chat_list.json", base_dir=DATA))
    assert [r.line for r in good] == [2, 6, 13]
    assert bad == []


def test_json_syntax_error_stops_with_one_bad_row_naming_the_line():
    good, bad = _split(read_rows("chat_broken.json", base_dir=DATA))
    assert [r.line for r in good] == [2, 3]
    assert good[1].value == 42
    assert len(bad) == 1 and bad[0].line == 4 and bad[0].kind == "malformed_json"
    assert "rest of the file was not read" in bad[0].message


def test_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    p = tmp_path / "lines.json"
    p.write_text('{"text": "a"}\n\n{"text": "b"}\n', encoding="utf-8")
    good, bad = _split(read_rows(str(p), base_dir=None))
    assert [(r.line, r.value["text"]) for r in good] == [(1, "a"), (3, "b")]


def test_json_top_level_scalar_is_malformed(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('\n"just a string"', encoding="utf-8")
    good, bad = _split(read_rows(str(p), base_dir=None))
    assert good == [] and bad[0].kind == "malformed_json" and bad[0].line == 2
    assert "list of objects" in bad[0].message


def test_csv_lines_follow_multiline_quoted_cells_and_blank_lines():
    good, bad = _split(read_rows("chat.csv", base_dir=DATA))
    assert [(r.line, r.value["id"]) for r in good] == [(2, "a"), (3, "b"), (13, "c"), (15, "d")]
    assert json.loads(good[1].value["messages"])[0]["content"] == "Two\nlines"


def test_parquet_line_is_row_index_plus_one(tmp_path):
    p = tmp_path / "d.parquet"
    msgs = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
            [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]]
    pq.write_table(pa.table({"messages": msgs}), p)
    good, bad = _split(read_rows(str(p), base_dir=None))
    assert [r.line for r in good] == [1, 2]
    assert good[1].value["messages"][1] == {"role": "assistant", "content": "B"}


def test_missing_local_file_and_unknown_extension_are_clear_errors(tmp_path):
    with pytest.raises(DataSourceError, match="file not found"):
        read_rows("nope.jsonl", base_dir=tmp_path)
    (tmp_path / "d.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataSourceError, match="unsupported file type '.txt'"):
        read_rows("d.txt", base_dir=tmp_path)


def test_hub_id_without_datasets_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(DataSourceError, match=r"qlora-studio\[hub\]"):
        list(read_rows("someone/some-dataset", base_dir=DATA))


def test_non_utf8_line_is_a_bad_row_with_its_line_and_byte_offset(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(b'{"text": "ok"}\n' + '{"text": "café"}\n'.encode("latin-1") + b'{"text": "after"}\n')
    good, bad = _split(read_rows(str(p), base_dir=None))
    assert [r.line for r in good] == [1, 3]
    assert [(b.line, b.kind) for b in bad] == [(2, "invalid_text")]
    assert "not UTF-8" in bad[0].message and "byte offset 28 " in bad[0].message
