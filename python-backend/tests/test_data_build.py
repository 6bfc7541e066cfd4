"""build_dataset: formats, bad rows with file:line, skipping, eval data, system prompts."""
from __future__ import annotations

import pytest

from qlora_studio.data import (BadDataError, DataSourceError, IGNORE_INDEX, build_dataset,
                               encode_value, load_tokenizer)
from qlora_studio.data.build import compile_recipe_template
from test_data_support import make_recipe

EXPECTED_BAD = {
    2: "malformed_json",
    3: "not_an_object",
    4: "missing_field",
    5: "unknown_role",
    6: "empty_conversation",
    7: "no_trained_tokens",
    8: "template_error",
    9: "no_trained_tokens",
    11: "missing_field",
}


def _build(recipe):
    return build_dataset(recipe, load_tokenizer(recipe))


def test_every_bad_row_kind_is_listed_with_file_and_line():
    recipe = make_recipe("bad_rows.jsonl", family="gemma", max_seq_len=64)
    with pytest.raises(BadDataError) as info:
        _build(recipe)
    got = {b.line: b.kind for b in info.value.bad_rows}
    assert got == EXPECTED_BAD
    text = str(info.value)
    for line, kind in EXPECTED_BAD.items():
        assert f"bad_rows.jsonl:{line}: {kind}:" in text
    assert "skip_bad_rows" in text
    by_line = {b.line: b.message for b in info.value.bad_rows}
    assert "'human'" in by_line[5] and "after truncation" in by_line[9]
    assert "System" in by_line[8] or "system" in by_line[8]


def test_skip_bad_rows_keeps_the_good_ones_and_counts_the_rest():
    recipe = make_recipe("bad_rows.jsonl", family="gemma", max_seq_len=64, skip_bad_rows=True)
    build = _build(recipe)
    assert [e.line for e in build.train] == [1, 12]
    assert build.skipped == len(EXPECTED_BAD) and len(build.bad_rows) == len(EXPECTED_BAD)
    assert build.stats["bad_rows_by_kind"]["no_trained_tokens"] == 2
    assert build.stats["train_examples"] == 2


def test_json_list_unknown_role_is_reported_on_the_element_line():
    with pytest.raises(BadDataError) as info:
        _build(make_recipe("chat_list.json"))
    assert [(b.line, b.kind) for b in info.value.bad_rows] == [(13, "unknown_role")]


def test_csv_messages_column_holds_json_text():
    with pytest.raises(BadDataError) as info:
        _build(make_recipe("chat.csv"))
    assert [(b.source, b.line, b.kind) for b in info.value.bad_rows] == [("chat.csv", 13, "malformed_json")]
    build = _build(make_recipe("chat.csv", skip_bad_rows=True))
    assert [e.line for e in build.train] == [2, 3, 15]


def test_instruction_format_builds_user_and_assistant_turns():
    recipe = make_recipe("instruction.jsonl", format="instruction", skip_bad_rows=True)
    tok = load_tokenizer(recipe)
    build = build_dataset(recipe, tok)
    assert [(b.line, b.kind) for b in build.bad_rows] == [(3, "missing_field")]
    first = tok.decode(build.train[0].input_ids)
    assert "<|im_start|>user\nTranslate to French.\n\nGood morning<|im_end|>" in first
    trained = tok.decode([t for t in build.train[0].labels if t != IGNORE_INDEX])
    assert trained == "Bonjour<|im_end|>"


def test_instruction_csv_empty_instruction_is_a_bad_row():
    with pytest.raises(BadDataError) as info:
        _build(make_recipe("instruction.csv", format="instruction"))
    assert [(b.line, b.kind) for b in info.value.bad_rows] == [(4, "empty_conversation")]


def test_text_format_trains_every_token_and_ends_with_eos():
    recipe = make_recipe("text.jsonl", family="llama3", format="text", skip_bad_rows=True)
    tok = load_tokenizer(recipe)
    build = build_dataset(recipe, tok)
    assert [(b.line, b.kind) for b in build.bad_rows] == [(3, "missing_field")]
    ex = build.train[1]
    assert ex.labels == ex.input_ids
    assert ex.input_ids[0] == tok.bos_token_id and ex.input_ids[-1] == tok.eos_token_id
    assert tok.decode(ex.input_ids[1:-1]) == "Seven is prime."


def test_system_prompt_is_prepended_only_when_missing():
    recipe = make_recipe("chat_good.jsonl", system_prompt="Be kind.")
    tok = load_tokenizer(recipe)
    template = compile_recipe_template(recipe, tok)
    enc = encode_value({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
                       recipe.data, tok, template)
    assert enc.text.startswith("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\na")
    enc2 = encode_value({"messages": [{"role": "system", "content": "Own."}, {"role": "user", "content": "a"},
                                      {"role": "assistant", "content": "b"}]}, recipe.data, tok, template)
    assert "Be kind." not in enc2.text and enc2.text.startswith("<|im_start|>system\nOwn.")


def test_field_mapping_renames_columns(tmp_path):
    p = tmp_path / "renamed.jsonl"
    p.write_text('{"conv": [{"from": "user", "value": "Hi"}, {"from": "assistant", "value": "Yo"}]}\n',
                 encoding="utf-8")
    recipe = make_recipe(p, fields={"messages": "conv", "role": "from", "content": "value"})
    build = _build(recipe)
    assert len(build.train) == 1 and build.train[0].line == 1


def test_eval_split_is_deterministic_under_the_seed(tmp_path):
    p = tmp_path / "many.jsonl"
    rows = [f'{{"messages": [{{"role": "user", "content": "q{i}"}}, {{"role": "assistant", "content": "a{i}"}}]}}'
            for i in range(20)]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    a = _build(make_recipe(p, eval_split=0.25, training={"seed": 1}))
    b = _build(make_recipe(p, eval_split=0.25, training={"seed": 1}))
    c = _build(make_recipe(p, eval_split=0.25, training={"seed": 2}))
    assert len(a.eval) == 5 and len(a.train) == 15
    assert [e.line for e in a.eval] == [e.line for e in b.eval]
    assert [e.line for e in a.eval] != [e.line for e in c.eval]
    assert sorted(e.line for e in a.train + a.eval) == list(range(1, 21))


def test_eval_file_is_read_and_its_bad_rows_reported():
    recipe = make_recipe("chat_good.jsonl", eval="chat_list.json")
    with pytest.raises(BadDataError, match=r"chat_list.json:13: unknown_role"):
        _build(recipe)
    build = _build(make_recipe("chat_good.jsonl", eval="chat_list.json", skip_bad_rows=True))
    assert [e.line for e in build.eval] == [2, 6] and build.skipped == 1


def test_no_usable_example_is_an_error_not_an_empty_run():
    recipe = make_recipe("text.jsonl", format="text", skip_bad_rows=True, fields={"text": "nothing"})
    with pytest.raises(DataSourceError, match="no usable training example"):
        _build(recipe)
