"""Chat templates: built-ins equal the real model templates; resolution; the Jinja environment."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from qlora_studio.data import BUILTIN_TEMPLATES, ChatTemplate, RowError, TemplateError, resolve_chat_template
from qlora_studio.data.templates import builtin_template_source
from test_data_support import REAL_TEMPLATES

# Built-in name -> (real template file copied from public model repos, bos, eos).
REAL = {
    "chatml": ("chatml-openhermes.jinja", "<s>", "<|im_end|>"),
    "llama3": ("llama-3-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    "mistral": ("mistral-7b-instruct-v0.1.jinja", "<s>", "</s>"),
    "gemma": ("gemma-it.jinja", "<bos>", "<eos>"),
    "phi3": ("phi-3-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    "qwen": ("qwen2.5-instruct.jinja", "", "<|im_end|>"),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hi  there "}, {"role": "assistant", "content": " Hello! ünïcode 🚀\n"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"},
     {"role": "assistant", "content": "b"}, {"role": "user", "content": "c\nd"},
     {"role": "assistant", "content": "e <b>&</b>"}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
     {"role": "user", "content": "three"}, {"role": "assistant", "content": "four"}],
]


def _render_or_error(template: ChatTemplate, messages, gen: bool, bos: str, eos: str) -> str:
    try:
        return template.render(messages, add_generation_prompt=gen, bos_token=bos, eos_token=eos).text
    except RowError as err:
        assert err.kind == "template_error"
        return "<raised>"


def test_every_builtin_has_a_real_counterpart():
    assert set(REAL) == set(BUILTIN_TEMPLATES)


@pytest.mark.parametrize("name", sorted(REAL))
def test_builtin_renders_the_same_text_as_the_real_template(name):
    file, bos, eos = REAL[name]
    ours = ChatTemplate(builtin_template_source(name), name)
    real = ChatTemplate((REAL_TEMPLATES / file).read_text(encoding="utf-8"), file)
    compared = 0
    for conv in CONVERSATIONS:
        for n in range(1, len(conv) + 1):
            for gen in (True, False):
                a = _render_or_error(ours, conv[:n], gen, bos, eos)
                b = _render_or_error(real, conv[:n], gen, bos, eos)
                assert a == b, (name, n, gen)
                compared += a != "<raised>"
    assert compared >= 10


@pytest.mark.parametrize("name", ["gemma", "mistral"])
def test_templates_without_system_role_raise_a_clear_error(name):
    t = ChatTemplate(builtin_template_source(name), name)
    with pytest.raises(RowError) as info:
        t.render(CONVERSATIONS[1], add_generation_prompt=False, bos_token="<s>", eos_token="</s>")
    assert info.value.kind == "template_error" and "system" in info.value.message


def test_resolve_tokenizer_template_and_its_absence():
    assert resolve_chat_template("tokenizer", SimpleNamespace(chat_template="{{ 'x' }}"), None) == "{{ 'x' }}"
    with pytest.raises(TemplateError) as info:
        resolve_chat_template("tokenizer", SimpleNamespace(chat_template=None), None)
    for name in BUILTIN_TEMPLATES:
        assert name in str(info.value)


def test_resolve_builtin_inline_and_file(tmp_path):
    assert resolve_chat_template("qwen", None, None) == builtin_template_source("qwen")
    inline = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert resolve_chat_template(inline, None, None) == inline
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "mine.jinja").write_text("{{ messages | length }}", encoding="utf-8")
    assert resolve_chat_template("t/mine.jinja", None, tmp_path) == "{{ messages | length }}"
    with pytest.raises(TemplateError, match="not an existing file"):
        resolve_chat_template("t/missing.jinja", None, tmp_path)


def test_template_syntax_error_names_the_line():
    with pytest.raises(TemplateError, match="line 2"):
        resolve_chat_template("{{ 'a' }}\n{% if %}", None, None)


def test_environment_matches_transformers_helpers():
    t = ChatTemplate("{{ messages[0] | tojson }}|{{ strftime_now('%Y') | length }}"
                     "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}!{% endfor %}")
    out = t.render([{"role": "user", "content": "<b>é</b>"}, {"role": "user", "content": "x"}],
                   add_generation_prompt=False).text
    assert out == json.dumps({"role": "user", "content": "<b>é</b>"}, ensure_ascii=False) + "|4!"


def test_sandbox_blocks_unsafe_attribute_access():
    t = ChatTemplate("{{ messages.__class__.__mro__ }}")
    with pytest.raises(RowError) as info:
        t.render([], add_generation_prompt=False)
    assert info.value.kind == "template_error"


def test_generation_tags_render_their_content_and_report_spans():
    src = (REAL_TEMPLATES / "llama3-training-generation.jinja").read_text(encoding="utf-8")
    t = ChatTemplate(src, "llama3-training")
    assert t.has_generation_tags
    conv = CONVERSATIONS[2]
    r = t.render(conv, add_generation_prompt=False, bos_token="<|begin_of_text|>")
    plain = ChatTemplate((REAL_TEMPLATES / "llama-3-instruct.jinja").read_text(encoding="utf-8"))
    assert r.text == plain.render(conv, add_generation_prompt=False, bos_token="<|begin_of_text|>").text
    assert [r.text[s:e] for s, e in r.generation_spans] == ["two<|eot_id|>", "four<|eot_id|>"]


def test_smollm3_template_with_strftime_and_generation_renders():
    src = (REAL_TEMPLATES / "smollm3-generation.jinja").read_text(encoding="utf-8")
    r = ChatTemplate(src).render(CONVERSATIONS[0], add_generation_prompt=False)
    assert "Today Date: " in r.text and len(r.generation_spans) == 1
    assert r.text[slice(*r.generation_spans[0])].startswith("<|im_start|>assistant\n")
