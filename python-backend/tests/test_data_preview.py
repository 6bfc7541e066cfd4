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


# ------------------------------------------------------------- what `qlora-studio preview` prints
def _recipe_file(tmp_path, rows, **data):
    import yaml

    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                         encoding="utf-8")
    recipe = {"base_model": str(MASKING / "chatml"), "data": {"train": "rows.jsonl", "chat_template": "chatml", **data}}
    path = tmp_path / "r.qlora.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


GOOD = {"messages": [{"role": "user", "content": "Smile?"}, {"role": "assistant", "content": "Yes 😄👍 é"}]}
UNTRAINABLE = {"messages": [{"role": "user", "content": "only a question"}]}


def test_preview_prints_each_non_ascii_character_once_with_a_byte_level_tokenizer(tmp_path):
    from conftest import cli

    res = cli("preview", str(_recipe_file(tmp_path, [GOOD])))
    assert res.returncode == 0, res.stderr
    assert "Yes 😄👍 é<|im_end|>" in res.stdout and "😄😄" not in res.stdout
    ex = preview(make_recipe(tmp_path / "rows.jsonl"))["examples"][0]
    assert "".join(t["text"] for t in ex["tokens"]) == ex["text"]


def test_preview_json_exits_3_like_preview_when_there_are_bad_rows(tmp_path):
    from conftest import cli

    path = _recipe_file(tmp_path, [GOOD, UNTRAINABLE])
    plain, as_json = cli("preview", str(path)), cli("preview", "--json", str(path))
    assert plain.returncode == 3 and as_json.returncode == 3, (plain.stderr, as_json.stderr)
    assert json.loads(as_json.stdout)["bad_rows"][0]["line"] == 2
    assert cli("preview", "--json", str(_recipe_file(tmp_path, [GOOD]))).returncode == 0


def test_a_long_template_path_is_named_as_written_and_only_inline_jinja_is_inline(tmp_path):
    from qlora_studio.data.build import compile_recipe_template

    folder = tmp_path / ("a-rather-long-folder-name-for-chat-templates-" * 2)
    folder.mkdir()
    path = folder / "raising.jinja"
    path.write_text("{{ raise_exception('no') }}", encoding="utf-8")
    tok = load_tokenizer(make_recipe("chat_good.jsonl"))
    assert len(str(path)) >= 60
    assert compile_recipe_template(make_recipe("chat_good.jsonl", chat_template=str(path)), tok).name == str(path)
    inline = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert compile_recipe_template(make_recipe("chat_good.jsonl", chat_template=inline), tok).name == "(inline)"
    out = preview(make_recipe("chat_good.jsonl", chat_template=str(path)))
    assert str(path) in out["bad_rows"][0]["message"]


def test_bad_row_reasons_count_assistant_turns_and_messages_apart(tmp_path):
    tmpl = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}{% if m.role == 'assistant' "
            "and loop.index > 2 %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}")
    rows = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}]
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    out = preview(make_recipe(tmp_path / "rows.jsonl", chat_template=tmpl))
    assert out["bad_rows"][0]["message"].startswith("assistant turn 2 (message 4): ")


def test_a_slow_tokenizer_is_a_clear_error_not_a_traceback(tmp_path):
    from conftest import cli

    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "vocab.json").write_text('{"<unk>": 0, "h@@": 1, "i": 2, "hi": 3}', encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nh i\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "CTRLTokenizer", "eos_token": "<unk>", "unk_token": "<unk>"}), encoding="utf-8")
    r = recipe_from_dict({"base_model": str(folder), "data": {"train": "x.jsonl", "chat_template": "chatml"}}, tmp_path)
    with pytest.raises(DataSourceError, match="fast \\(Rust\\) tokenizer"):
        load_tokenizer(r)
    path = _recipe_file(tmp_path, [GOOD])
    path.write_text(path.read_text(encoding="utf-8").replace(str(MASKING / "chatml"), str(folder)), encoding="utf-8")
    res = cli("preview", str(path))
    assert res.returncode == 3 and "fast (Rust) tokenizer" in res.stderr and "Traceback" not in res.stderr
