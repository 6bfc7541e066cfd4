"""preview() and load_tokenizer(): what the dataset panel and the trainer start from."""
from __future__ import annotations

import json
import shutil

import pytest

from qlora_studio.data import DataSourceError, TemplateError, load_tokenizer, preview
from qlora_studio.data.templates import builtin_template_source
from qlora_studio.recipe import recipe_from_dict
from test_data_support import MASKING, make_recipe


def test_preview_shows_tokens_as_the_trainer_sees_them():
    out = preview(make_recipe("chat_good.jsonl", max_seq_len=128))
    assert out["total"] == 2 and [e["line"] for e in out["examples"]] == [1, 3]
    ex = out["examples"][0]
    assert "".join(t["text"] for t in ex["tokens"]) == ex["text"]
    assert ex["n_tokens"] == len(ex["tokens"]) and ex["truncated"] is False
    trained = "".join(t["text"] for t in ex["tokens"] if t["trained"])
    assert trained == "Hello!<|im_end|>" and ex["n_trained"] == sum(t["trained"] for t in ex["tokens"])
    assert out["bad_rows"] == []
    assert out["stats"]["packing"]["rows"] == 1 and out["stats"]["packing"]["examples"] == 2
    assert out["template"] == builtin_template_source("chatml")


def test_preview_pages_with_offset_and_limit():
    out = preview(make_recipe("chat_good.jsonl"), limit=1, offset=1)
    assert [e["line"] for e in out["examples"]] == [3] and out["total"] == 2


def test_preview_lists_bad_rows_instead_of_raising():
    out = preview(make_recipe("bad_rows.jsonl", family="gemma", max_seq_len=64))
    kinds = {b["line"]: b["kind"] for b in out["bad_rows"]}
    assert kinds[2] == "malformed_json" and kinds[8] == "template_error" and kinds[9] == "no_trained_tokens"
    assert out["stats"]["bad_rows"] == 9 and out["total"] == 2


def test_load_tokenizer_sets_pad_to_eos_and_the_recipe_template(tmp_path):
    folder = tmp_path / "tok"
    shutil.copytree(MASKING / "llama3", folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.pop("pad_token")
    cfg.pop("chat_template")
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
    r = recipe_from_dict({"base_model": "tok", "data": {"train": "x.jsonl", "chat_template": "chatml"}}, tmp_path)
    tok = load_tokenizer(r)
    assert tok.pad_token == tok.eos_token == "<|eot_id|>"
    assert tok.chat_template == builtin_template_source("chatml")
    r2 = recipe_from_dict({"base_model": "tok", "data": {"train": "x.jsonl"}}, tmp_path)
    with pytest.raises(TemplateError, match="no chat template"):
        load_tokenizer(r2)
    r3 = recipe_from_dict({"base_model": "tok", "data": {"train": "x.jsonl", "format": "text"}}, tmp_path)
    assert load_tokenizer(r3).chat_template is None


def test_missing_tokenizer_folder_is_a_clear_error(tmp_path):
    r = recipe_from_dict({"base_model": "./no-such-model", "data": {"train": "x.jsonl"}}, tmp_path)
    with pytest.raises(DataSourceError, match="cannot load the tokenizer"):
        load_tokenizer(r)
