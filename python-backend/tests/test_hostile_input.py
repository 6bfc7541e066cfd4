"""Hostile input to validate and preview: each case is a clear issue or a bad row with its line.

Generated inputs only (alias bombs, deep nesting, huge numbers, lone surrogates, invalid UTF-8,
huge cells and rows); every test bounds time and memory so a regression fails instead of hanging.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qlora_studio.data import BadDataError, build_dataset, preview
from qlora_studio.recipe.yaml_source import MAX_DEPTH, MAX_VALUES, parse_yaml
from test_data_support import MASKING, fast_tokenizer, make_recipe

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
CLI = [sys.executable, "-m", "qlora_studio.cli"]


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_one_issue_in_well_under_a_second():
    t = time.perf_counter()
    out = parse_yaml(alias_bomb(9))  # 10^9 values if expanded
    assert time.perf_counter() - t < 2.0
    assert out.value is None and len(out.issues) == 1
    assert f"{MAX_VALUES:,} values" in out.issues[0].message and out.issues[0].line >= 1


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000,
                                  "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1500)),
                                  "a: " + "{b: " * 2000 + "1" + "}" * 2000])
def test_deep_recipe_nesting_is_an_issue_not_a_recursion_error(text):
    out = parse_yaml(text)
    assert out.value is None and len(out.issues) == 1
    assert f"more than {MAX_DEPTH} levels" in out.issues[0].message


def _cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def test_validate_cli_on_an_alias_bomb_and_deep_nesting_exits_2_without_traceback(tmp_path):
    (tmp_path / "bomb.qlora.yaml").write_text(alias_bomb(8), encoding="utf-8")
    (tmp_path / "deep.qlora.yaml").write_text("base_model: " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    for name in ("bomb.qlora.yaml", "deep.qlora.yaml"):
        r = _cli(["validate", name], tmp_path)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and f"{name}:1:" in r.stderr


def _write_jsonl(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def hostile_rows() -> dict[int, tuple[bytes, str]]:
    """Line number -> (raw line, expected bad-row kind)."""
    return {
        2: (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_large"),
        3: (b'{"messages": [{"role": "user", "content": "}], "n": ' + b"7" * 5000 + b"}",
            "malformed_json"),
        4: (b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}',
            "invalid_text"),
        5: ('{"messages": [{"role": "user", "content": "caf\u00e9"}]}'.encode("latin-1"), "invalid_text"),
        6: (b'{"messages": [{"role": "user", "content": ' + b"[" * 200 + b'"x"' + b"]" * 200 + b"}]}",
            "too_large"),
    }


def test_hostile_jsonl_rows_are_bad_rows_with_their_lines_and_skip_bad_rows_skips_them(tmp_path):
    rows = hostile_rows()
    lines = [json.dumps(GOOD).encode()] + [rows[i][0] for i in sorted(rows)] + [json.dumps(GOOD).encode()]
    _write_jsonl(tmp_path / "h.jsonl", lines)
    tok = fast_tokenizer("chatml")
    out = preview(make_recipe(tmp_path / "h.jsonl", max_seq_len=64), tokenizer=tok)
    assert {b["line"]: b["kind"] for b in out["bad_rows"]} == {i: k for i, (_, k) in rows.items()}
    assert [e["line"] for e in out["examples"]] == [1, 7]
    build = build_dataset(make_recipe(tmp_path / "h.jsonl", max_seq_len=64, skip_bad_rows=True), tok)
    assert [e.line for e in build.train] == [1, 7] and build.skipped == len(rows)


def test_invalid_utf8_names_the_real_byte_offset_and_line(tmp_path):
    good = json.dumps(GOOD).encode()
    lines = [good] * 300 + [b'{"text": "\xff"}'] + [good] * 3
    _write_jsonl(tmp_path / "u.jsonl", lines)
    out = preview(make_recipe(tmp_path / "u.jsonl", max_seq_len=64), tokenizer=fast_tokenizer("chatml"))
    (bad,) = out["bad_rows"]
    offset = (len(good) + 1) * 300 + len(b'{"text": "')
    assert bad["line"] == 301 and f"byte offset {offset} " in bad["message"] and out["total"] == 303


def test_json_array_rows_deep_or_huge_are_bad_rows_and_reading_continues(tmp_path):
    elems = [json.dumps(GOOD), "[" * 50_000 + "]" * 50_000, '{"n": ' + "1" * 5000 + "}", json.dumps(GOOD)]
    (tmp_path / "a.json").write_text("[\n" + ",\n".join(elems) + "\n]\n", encoding="utf-8")
    out = preview(make_recipe(tmp_path / "a.json", max_seq_len=64), tokenizer=fast_tokenizer("chatml"))
    assert {b["line"]: b["kind"] for b in out["bad_rows"]} == {3: "too_large", 4: "malformed_json"}
    assert [e["line"] for e in out["examples"]] == [2, 5]


def test_json_array_syntax_error_cannot_be_skipped(tmp_path):
    (tmp_path / "s.json").write_text("[\n" + json.dumps(GOOD) + ",\n{oops},\n" + json.dumps(GOOD) + "\n]\n",
                                     encoding="utf-8")
    recipe = make_recipe(tmp_path / "s.json", max_seq_len=64, skip_bad_rows=True)
    with pytest.raises(BadDataError, match="skip_bad_rows does not apply") as info:
        build_dataset(recipe, fast_tokenizer("chatml"))
    assert info.value.bad_rows[0].line == 3


def test_csv_cell_over_128_kib_and_invalid_bytes_are_rows_not_crashes(tmp_path):
    msgs = json.dumps(GOOD["messages"])
    big = json.dumps([{"role": "user", "content": "y" * 200_000}, {"role": "assistant", "content": "z"}])
    data = ("messages\n" + '"' + msgs.replace('"', '""') + '"\n' + '"' + big.replace('"', '""') + '"\n').encode()
    data += b'"\xfe"\n' + ('"' + msgs.replace('"', '""') + '"\n').encode()
    (tmp_path / "c.csv").write_bytes(data)
    out = preview(make_recipe(tmp_path / "c.csv", max_seq_len=64), tokenizer=fast_tokenizer("chatml"))
    assert {b["line"]: b["kind"] for b in out["bad_rows"]} == {3: "too_large", 4: "invalid_text"}
    assert [e["line"] for e in out["examples"]] == [2, 5]


def test_a_50_mb_row_is_decided_without_tokenizing_it(tmp_path):
    row = {"messages": [{"role": "user", "content": "word " * 10_000_000}, {"role": "assistant", "content": "ok"}]}
    _write_jsonl(tmp_path / "big.jsonl", [json.dumps(GOOD).encode(), json.dumps(row).encode()])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    out = preview(make_recipe(tmp_path / "big.jsonl", max_seq_len=2048), tokenizer=fast_tokenizer("chatml"))
    assert time.perf_counter() - t < 10
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) < 600 * 1024  # KiB: < 600 MiB more
    (bad,) = out["bad_rows"]
    assert bad["line"] == 2 and bad["kind"] == "too_large" and "max_seq_len" in bad["message"]


def test_preview_reports_the_bad_rows_of_data_eval(tmp_path):
    _write_jsonl(tmp_path / "t.jsonl", [json.dumps(GOOD).encode()] * 2)
    _write_jsonl(tmp_path / "e.jsonl", [json.dumps(GOOD).encode(), b"{broken"])
    recipe = make_recipe(tmp_path / "t.jsonl", max_seq_len=64, eval=str(tmp_path / "e.jsonl"))
    out = preview(recipe, tokenizer=fast_tokenizer("chatml"))
    assert [(b["source"], b["line"], b["kind"]) for b in out["bad_rows"]] == [(str(tmp_path / "e.jsonl"), 2, "malformed_json")]
