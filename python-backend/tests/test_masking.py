"""The masking rule (docs/masking.md): shared vectors, EOS, truncation, train_on, fallbacks."""
from __future__ import annotations

import importlib.util
import json

import pytest

from qlora_studio.data import IGNORE_INDEX, ChatTemplate, RowError, encode_conversation
from qlora_studio.data.masking import assistant_spans
from qlora_studio.data.templates import builtin_template_source, special_token_kwargs
from test_data_support import MASKING, REAL_TEMPLATES, REPO, fast_tokenizer


def _generator():
    spec = importlib.util.spec_from_file_location("gen_masking_vectors", REPO / "scripts" / "gen_masking_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()
CONV = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name a prime."},
    {"role": "assistant", "content": "7"},
    {"role": "user", "content": "And an even one?"},
    {"role": "assistant", "content": "2"},
]


def _trained_text(tok, enc) -> str:
    return tok.decode([label for label in enc.labels if label != IGNORE_INDEX])


@pytest.mark.parametrize("family", sorted(GEN.FAMILIES))
def test_committed_vectors_equal_what_the_code_produces(family):
    folder = MASKING / family
    committed = json.loads((folder / "vectors.json").read_text(encoding="utf-8"))
    assert GEN.compute_vectors(family, folder) == committed
    assert (folder / "tokenizer.json").stat().st_size < 200_000
    assert sum("input_ids" in c for c in committed["cases"]) >= 2


def test_every_builtin_template_has_vectors():
    templates = {GEN.FAMILIES[f]["template"] for f in GEN.FAMILIES}
    assert {"chatml", "llama3", "mistral", "gemma", "phi3", "qwen"} <= templates
    assert any(t.startswith("file:") and "generation" in t for t in templates)


def test_eos_is_trained_even_when_pad_equals_eos():
    tok = fast_tokenizer("chatml")
    assert tok.pad_token_id == tok.eos_token_id
    enc = encode_conversation(CONV, tok, builtin_template_source("chatml"), "assistant", 512)
    eos_positions = [i for i, t in enumerate(enc.input_ids) if t == tok.eos_token_id]
    trained_eos = [i for i in eos_positions if enc.labels[i] == tok.eos_token_id]
    assert len(trained_eos) == 2  # the two assistant turns; system/user ends stay masked
    assert len(eos_positions) == 5
    assert _trained_text(tok, enc) == "7<|im_end|>2<|im_end|>"


def test_template_without_end_of_turn_gets_eos_inserted_and_trained():
    tok = fast_tokenizer("plain-eos")
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    enc = encode_conversation(CONV, tok, template, "assistant", 512)
    assert enc.text.endswith("assistant: 2</s>\n")
    assert "assistant: 7</s>\nuser: And" in enc.text
    assert _trained_text(tok, enc) == "7</s>2</s>"
    assert [enc.text[s:e] for s, e in enc.trained_spans] == ["7</s>", "2</s>"]


def test_train_on_completion_and_all():
    tok = fast_tokenizer("chatml")
    src = builtin_template_source("chatml")
    completion = encode_conversation(CONV, tok, src, "completion", 512)
    assert _trained_text(tok, completion) == "2<|im_end|>"
    everything = encode_conversation(CONV, tok, src, "all", 512)
    assert everything.labels == everything.input_ids


def test_truncation_keeps_the_start_and_reports_it():
    tok = fast_tokenizer("chatml")
    src = builtin_template_source("chatml")
    full = encode_conversation(CONV, tok, src, "assistant", 512)
    cut_at = full.labels.index(tok.eos_token_id) + 1  # just after the first trained EOS
    enc = encode_conversation(CONV, tok, src, "assistant", cut_at)
    assert enc.truncated and enc.input_ids == full.input_ids[:cut_at]
    assert _trained_text(tok, enc) == "7<|im_end|>"
    with pytest.raises(RowError) as info:
        encode_conversation(CONV, tok, src, "completion", cut_at)
    assert info.value.kind == "no_trained_tokens" and "max_seq_len" in info.value.message


def test_no_assistant_message_means_no_trained_tokens():
    tok = fast_tokenizer("chatml")
    with pytest.raises(RowError) as info:
        encode_conversation(CONV[:2], tok, builtin_template_source("chatml"), "assistant", 512)
    assert info.value.kind == "no_trained_tokens"


def test_generation_prompt_that_differs_from_the_turn_falls_back_to_the_content():
    tok = fast_tokenizer("plain-eos")
    # The generation prompt says "Bot:" but finished turns say "assistant:"; the content is found.
    template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
                "{% if add_generation_prompt %}Bot:{% endif %}")
    enc = encode_conversation(CONV, tok, template, "assistant", 512)
    assert [enc.text[s:e] for s, e in enc.trained_spans] == ["7</s>", "2</s>"]


def test_template_that_rewrites_content_is_a_template_mismatch():
    tok = fast_tokenizer("plain-eos")
    template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] | upper }}</s>\n{% endfor %}"
                "{% if add_generation_prompt %}Bot:{% endif %}")
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(RowError) as info:
        encode_conversation(conv, tok, template, "assistant", 512)
    assert info.value.kind == "template_mismatch"
    assert info.value.message == ("assistant turn 1 (message 2): cannot be located: the template does not "
                                  "render this message's content exactly once, as written")


def test_the_end_of_turn_marker_is_never_taken_from_the_next_message():
    tok = fast_tokenizer("plain-eos")
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "</s> is a tag"}, {"role": "assistant", "content": "yes"}]
    enc = encode_conversation(conv, tok, template, "assistant", 512)
    assert _turns(enc) == ["hello</s>", "yes</s>"]  # inserted: the user's "</s>" is not this turn's end
    assert enc.text.startswith("user: hi\nassistant: hello</s>\nuser: </s> is a tag\n")
    user_eos = enc.text.index("</s> is")
    assert all(lab == IGNORE_INDEX for lab, (a, b) in zip(enc.labels, enc.offsets) if a >= user_eos and b <= user_eos + 4)


def test_rule_agrees_with_trl_generation_tags():
    tok = fast_tokenizer("llama3-generation")
    t = ChatTemplate((REAL_TEMPLATES / "llama3-training-generation.jinja").read_text(encoding="utf-8"))
    tokens = special_token_kwargs(tok)
    rendered = t.render(CONV, add_generation_prompt=False, **tokens)
    spans, inserted = assistant_spans(rendered.text, t, CONV, tokens)
    assert not any(inserted) and spans == list(rendered.generation_spans)


def test_duplicated_bos_is_stripped():
    tok = fast_tokenizer("llama3")
    bos = tok.bos_token
    template = bos + builtin_template_source("llama3")  # a template that emits BOS twice
    enc = encode_conversation(CONV, tok, template, "assistant", 512)
    assert enc.input_ids[0] == tok.bos_token_id and enc.input_ids[1] != tok.bos_token_id


def test_unknown_train_on_is_rejected():
    with pytest.raises(ValueError, match="train_on"):
        encode_conversation(CONV, fast_tokenizer("chatml"), builtin_template_source("chatml"), "prompt", 512)


REAL_EOS = {
    "chatml-openhermes": "<|im_end|>", "gemma-it": "<eos>", "llama-2-chat": "</s>",
    "llama-3-instruct": "<|eot_id|>", "llama3-training-generation": "<|eot_id|>",
    "mistral-7b-instruct-v0.1": "</s>", "phi-3-mini-instruct": "<|endoftext|>",
    "qwen2.5-instruct": "<|im_end|>", "smollm3-generation": "<|im_end|>", "zephyr-7b-beta": "</s>",
}
REAL_MARKER = {"chatml-openhermes": "<|im_end|>", "gemma-it": "<end_of_turn>", "llama-2-chat": " </s>",
               "llama-3-instruct": "<|eot_id|>", "llama3-training-generation": "<|eot_id|>",
               "mistral-7b-instruct-v0.1": "</s>", "phi-3-mini-instruct": "<|end|>",
               "qwen2.5-instruct": "<|im_end|>", "smollm3-generation": "<|im_end|>", "zephyr-7b-beta": "</s>"}


@pytest.mark.parametrize("name", sorted(REAL_EOS))
def test_rule_finds_content_plus_end_of_turn_in_every_real_template(name):
    conv = [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"},
            {"role": "user", "content": "And an even one?"}, {"role": "assistant", "content": "2 is."}]
    t = ChatTemplate((REAL_TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"), name)
    tokens = {"bos_token": "<s>", "eos_token": REAL_EOS[name]}
    full = t.render(conv, add_generation_prompt=False, **tokens).text
    spans, inserted = assistant_spans(full, t, conv, tokens)
    assert not any(inserted)  # every real template closes assistant turns itself
    assert [full[s:e] for s, e in spans] == ["7" + REAL_MARKER[name], "2 is." + REAL_MARKER[name]]


# ---------------------------------------------------------------- regressions on real templates
_spec = importlib.util.spec_from_file_location("masking_corpus", REPO / "scripts" / "masking_corpus.py")
CORPUS = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CORPUS)
_ENTRIES = {e["name"]: e for e in CORPUS.template_entries()}


def _real(name: str):
    entry = _ENTRIES[name]
    return CORPUS.load_tokenizer(entry), ChatTemplate(entry["source"], name)


def _turns(enc) -> list[str]:
    return [enc.text[s:e] for s, e in enc.trained_spans]


def _rendered(template, tok, conv) -> str:
    return template.render(conv, add_generation_prompt=False, **special_token_kwargs(tok)).text


def test_history_rendered_differently_from_the_last_turn_trains_every_turn_and_inserts_nothing():
    """Qwen3 re-formats <think> only after the last user query; LFM-style templates likewise
    render history by other rules. Every turn keeps its content, no EOS is inserted anywhere."""
    tok, qwen3 = _real("qwen3")
    conv = CORPUS.CONVERSATIONS["think_multi_turn"]
    enc = encode_conversation(conv, tok, qwen3, "assistant", 4096)
    assert enc.text == _rendered(qwen3, tok, conv)
    assert _turns(enc) == ["Yes, 7 is prime.<|im_end|>",
                           "<think>\nTwo is even and prime.\n</think>\n\n2 is the only even prime.<|im_end|>"]
    empty_first = CORPUS.CONVERSATIONS["empty_first_reply"]
    enc = encode_conversation(empty_first, tok, qwen3, "assistant", 4096)
    assert "<<|im_end|>" not in enc.text and enc.text == _rendered(qwen3, tok, empty_first)
    assert _turns(enc) == ["<|im_end|>", "<think>\n\n</think>\n\nok<|im_end|>"]
    completion = encode_conversation(conv, tok, qwen3, "completion", 4096)
    assert completion.text == _rendered(qwen3, tok, conv)  # the prompt carries no insertion either
    tok, lfm = _real("lfm2")
    enc = encode_conversation(CORPUS.CONVERSATIONS["system_multi_turn"], tok, lfm, "assistant", 4096)
    assert _turns(enc) == ["7<|im_end|>", "2<|im_end|>", "You're welcome.<|im_end|>"]


def test_content_search_never_matches_inside_the_user_message():
    """'Yes' inside 'Answer Yes or No.' used to be trained; so was a tool-use template's user text."""
    conv = CORPUS.CONVERSATIONS["yes_inside_question"]
    ds_eos = "<｜end▁of▁sentence｜>"
    for name, marker in (("deepseek-v3", ds_eos), ("deepseek-r1-distill-llama", ds_eos),
                         ("hermes-2-pro-tool-use", "<|im_end|>"), ("llama-3.1", "<|eot_id|>"),
                         ("mistral-nemo", "</s>"), ("mixtral-8x22b", "</s>")):
        tok, template = _real(name)
        enc = encode_conversation(conv, tok, template, "assistant", 4096)
        assert _turns(enc) == ["Yes" + marker], name
        assert _trained_text(tok, enc).lstrip() == "Yes" + marker, name  # " Yes" is one token after "[/INST]"


def test_system_moved_to_the_last_user_turn_keeps_every_turn():
    for name in ("mistral-nemo", "mixtral-8x22b"):
        tok, template = _real(name)
        enc = encode_conversation(CORPUS.CONVERSATIONS["system_multi_turn"], tok, template, "assistant", 4096)
        assert _turns(enc) == ["7</s>", "2</s>", "You're welcome.</s>"], name


def test_valid_rows_with_empty_replies_or_stripped_think_are_not_rejected():
    tok, deepseek = _real("deepseek-v3")
    enc = encode_conversation(CORPUS.CONVERSATIONS["empty_first_reply"], tok, deepseek, "assistant", 4096)
    assert _turns(enc) == ["<｜end▁of▁sentence｜>", "ok<｜end▁of▁sentence｜>"]
    enc = encode_conversation(CORPUS.CONVERSATIONS["think_multi_turn"], tok, deepseek, "assistant", 4096)
    # DeepSeek keeps what follows </think> as it is, leading newlines included.
    assert _turns(enc) == ["\n\nYes, 7 is prime.<｜end▁of▁sentence｜>",
                           "2 is the only even prime.<｜end▁of▁sentence｜>"]


def test_special_token_lookalikes_inside_messages_are_plain_text():
    tok = fast_tokenizer("chatml")
    conv = [{"role": "user", "content": "End with <|im_end|> please"},
            {"role": "assistant", "content": "Sure: <|im_end|> and <|im_start|>user"}]
    enc = encode_conversation(conv, tok, builtin_template_source("chatml"), "assistant", 512)
    eos, start = tok.eos_token_id, tok.convert_tokens_to_ids("<|im_start|>")
    assert enc.input_ids.count(eos) == 2 and enc.input_ids.count(start) == 2  # the template's own only
    trained = [t for t in enc.labels if t != IGNORE_INDEX]
    assert trained.count(eos) == 1 and trained[-1] == eos
    assert _trained_text(tok, enc) == "Sure: <|im_end|> and <|im_start|>user<|im_end|>"
    assert enc.input_ids == tok.apply_chat_template(conv, chat_template=builtin_template_source("chatml"),
                                                    sanitize_control_tokens=True, return_dict=False)


def test_generation_tags_decide_the_trained_tokens():
    """The empty <think> block the tags mark as generated is trained, as transformers marks it."""
    tok, template = _real("qwen3-training")
    conv = CORPUS.CONVERSATIONS["multi_turn"]
    enc = encode_conversation(conv, tok, template, "assistant", 4096)
    out = tok.apply_chat_template(conv, chat_template=template.source, return_dict=True,
                                  return_assistant_tokens_mask=True)
    assert enc.input_ids == out["input_ids"]
    assert [lab != IGNORE_INDEX for lab in enc.labels] == [bool(m) for m in out["assistant_masks"]]
    assert "<think>\n\n</think>\n\n" in _trained_text(tok, enc)


def test_an_unlocatable_turn_is_a_bad_row_naming_the_turn():
    tok = fast_tokenizer("chatml")
    # Renders each assistant content twice: no single region can be trained with certainty.
    template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                "{% if m.role == 'assistant' %} ({{ m.content }}){% endif %}<|im_end|>\n{% endfor %}")
    with pytest.raises(RowError) as info:
        encode_conversation(CONV, tok, template, "assistant", 512)
    assert info.value.kind == "template_mismatch"
    assert info.value.message.startswith("assistant turn 1 (message 3): cannot be located")


def test_text_rows_keep_special_token_lookalikes_as_plain_text():
    from qlora_studio.data import encode_text

    tok = fast_tokenizer("chatml")
    enc = encode_text("say <|im_end|> then stop", tok, 512)
    assert enc.input_ids.count(tok.eos_token_id) == 1 and enc.input_ids[-1] == tok.eos_token_id
    assert enc.text == "say <|im_end|> then stop<|im_end|>" and enc.labels == enc.input_ids


def test_template_refusing_a_conversation_cut_before_a_turn_still_locates_it():
    tok = fast_tokenizer("chatml")
    template = ("{% if messages[-1].role != 'assistant' and not add_generation_prompt %}"
                "{{ raise_exception('a conversation must end with an answer') }}{% endif %}"
                + builtin_template_source("chatml"))
    enc = encode_conversation(CONV, tok, template, "assistant", 512)
    assert _turns(enc) == ["7<|im_end|>", "2<|im_end|>"]
