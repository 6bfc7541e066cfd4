"""The masking rule on real chat templates (test/fixtures/chat-templates/, corpus/ included) ×
the conversations of scripts/masking_corpus.py.

For every row either the trained span of each assistant turn is that message's content as the
template renders it plus the end-of-turn marker that closes it (nothing of a header, the system or
a user message), or the row is a bad row whose reason names the turn. Token ids equal
transformers' ``apply_chat_template(..., sanitize_control_tokens=True)``; on templates with
``{% generation %}`` tags the trained spans are transformers' generation spans and the labels its
``return_assistant_tokens_mask``.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from functools import lru_cache

import pytest

from qlora_studio.data import IGNORE_INDEX, ChatTemplate, RowError, encode_conversation
from qlora_studio.data.masking import END_OF_TURN_MARKERS
from qlora_studio.data.templates import special_token_kwargs
from test_data_support import REPO

sys.path.insert(0, str(REPO / "scripts"))
spec = importlib.util.spec_from_file_location("masking_corpus", REPO / "scripts" / "masking_corpus.py")
mc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mc)

ENTRIES = {e["name"]: e for e in mc.template_entries()}
#: Template text a template writes between its generation prompt and the content, which the model
#: writes at inference and so is trained (whitespace removed): empty reasoning blocks, channels.
PREAMBLES = ("", "<think></think>", "</think>", "<|channel|>final<|message|>")
#: Template text between the content and the end-of-turn marker (trained: the model writes it).
POSTAMBLES = ("", "<|END_RESPONSE|>")
#: Templates on which no row of the conversation set may be a template_mismatch bad row.
MUST_LOCATE_ALL = ("qwen3", "qwen3-instruct-2507", "qwen3.5-think", "qwq", "deepseek-v3", "deepseek-v3-671b",
                   "deepseek-r1-distill-llama", "mistral-nemo", "mixtral-8x22b", "lfm2", "llama-3.1",
                   "llama-3.2", "llama-4", "gemma-3", "phi-3.5", "phi-4", "phi-4-mini", "cohere", "cohere2",
                   "command-r", "smollm3", "hermes-3", "hermes-2-pro-tool-use", "chatml-openhermes",
                   "llama-2-chat", "zephyr-7b-beta", "granite-3.3", "glm-4.5", "gpt-oss")


def _nows(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _renderings(content: str) -> set[str]:
    """How a template may render an assistant content (whitespace aside): as written, without its
    reasoning block, or with the reasoning block re-formatted (its opening tag may end the
    generation prompt)."""
    answer = content.split("</think>")[-1]
    reasoning = content.split("</think>")[0].split("<think>")[-1] if "</think>" in content else ""
    forms = (content, answer, f"<think>{reasoning}</think>{answer}", f"{reasoning}</think>{answer}")
    return {_nows(f) for f in forms}


@lru_cache(maxsize=None)
def _setup(name: str):
    entry = ENTRIES[name]
    return entry, mc.load_tokenizer(entry), ChatTemplate(entry["source"], name)


@lru_cache(maxsize=None)
def _row(name: str, conv_name: str):
    entry, tok, template = _setup(name)
    try:
        return encode_conversation(mc.CONVERSATIONS[conv_name], tok, template, "assistant", 8192)
    except RowError as err:
        return err


ROWS = [(n, c) for n in sorted(ENTRIES) for c in mc.CONVERSATIONS]


def test_the_corpus_is_at_least_30_real_templates_with_provenance():
    import json

    sources = json.loads((mc.CORPUS_TEMPLATES / "SOURCES.json").read_text(encoding="utf-8"))
    assert len(sources) >= 30 and len(ENTRIES) >= 40
    for s in sources:
        assert s["repo"] and s["path"] and re.fullmatch(r"[0-9a-f]{40}", s["commit"])
        import hashlib
        text = (mc.CORPUS_TEMPLATES / f"{s['name']}.jinja").read_text(encoding="utf-8")
        assert hashlib.sha256(text.encode()).hexdigest() == s["sha256"], s["name"]
    assert len(TAGGED) >= 8


TAGGED = sorted(n for n, e in ENTRIES.items() if ChatTemplate(e["source"]).has_generation_tags)


@pytest.mark.parametrize("name", sorted(set(ENTRIES) - set(TAGGED)))
def test_every_row_trains_exactly_each_assistant_turn_or_names_the_turn(name):
    """(Tagged templates are held to transformers' assistant mask instead, below.)"""
    entry, tok, template = _setup(name)
    markers = tuple(m for m in (entry["eos_token"], *END_OF_TURN_MARKERS) if m)
    for conv_name, conv in mc.CONVERSATIONS.items():
        enc = _row(name, conv_name)
        where = f"{name} × {conv_name}"
        if isinstance(enc, RowError):
            if enc.kind == "template_mismatch":
                assert re.match(r"assistant turn \d+ \(message \d+\): ", enc.message), (where, enc.message)
            else:
                assert enc.kind == "template_error", (where, enc.kind, enc.message)
            continue
        assistants = [m["content"] for m in conv if m["role"] == "assistant"]
        assert len(enc.trained_spans) == len(assistants), where
        prev = 0
        for k, ((s, e), content) in enumerate(zip(enc.trained_spans, assistants)):
            assert prev <= s <= e, where
            prev = e
            span = enc.text[s:e]
            marker = next((m for m in markers if span.endswith(m)), None)
            assert marker is not None, (where, k, span)
            body = _nows(span[: len(span) - len(marker)])
            ok = [(p, q) for p in PREAMBLES for q in POSTAMBLES if body.startswith(_nows(p)) and body.endswith(q)
                  and body[len(_nows(p)):len(body) - len(q)] in _renderings(content)]
            assert ok, (where, f"turn {k + 1}", span)
            trained = [t for t, (a, b) in zip(enc.input_ids, enc.offsets) if a < e and b > s]
            # (a SentencePiece-style decoder turns a literal "▁" into a space)
            expected = span.replace("\u2581", " ") if entry["tokenizer"] == "metaspace" else span
            assert _nows(tok.decode(trained)) == _nows(expected), (where, k)
        outside = [i for i, (a, b) in enumerate(enc.offsets) if not any(a < e and b > s for s, e in enc.trained_spans)]
        assert all(enc.labels[i] == IGNORE_INDEX for i in outside), where
        assert all(enc.labels[i] == enc.input_ids[i] for i in range(len(enc.labels)) if i not in set(outside)), where


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_completion_rows_have_the_same_text_and_train_only_the_last_turn(name):
    entry, tok, template = _setup(name)
    for conv_name, conv in mc.CONVERSATIONS.items():
        full = _row(name, conv_name)
        if isinstance(full, RowError):
            continue
        last = encode_conversation(conv, tok, template, "completion", 8192)
        assert last.text == full.text and last.input_ids == full.input_ids, conv_name
        assert last.trained_spans == full.trained_spans[-1:], conv_name


@pytest.mark.parametrize("name", MUST_LOCATE_ALL)
def test_families_that_move_or_reformat_turns_give_no_bad_row(name):
    bad = [(c, _row(name, c).message) for c in mc.CONVERSATIONS
           if isinstance(_row(name, c), RowError) and _row(name, c).kind == "template_mismatch"]
    assert not bad, bad


#: Templates that write no end-of-turn marker after an assistant turn (EOS is inserted).
NO_MARKER = ("falcon-2", "glm-4.5", "nemotron-mini")
#: Templates transformers' apply_chat_template fails on (TypeError: it passes tools=None).
TRANSFORMERS_CANNOT_RENDER = ("hermes-2-pro-tool-use",)


def _holds_added_token(tok, conv, special: bool | None = None) -> bool:
    added = [t.content for t in tok.added_tokens_decoder.values() if special is None or t.special == special]
    return any(s in m["content"] for m in conv for s in added)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_ids_equal_transformers_with_sanitized_control_tokens(name):
    entry, tok, template = _setup(name)
    compared = 0
    for conv_name, conv in mc.CONVERSATIONS.items():
        enc = _row(name, conv_name)
        if isinstance(enc, RowError) or enc.text != template.render(
                conv, add_generation_prompt=False, **special_token_kwargs(tok)).text:
            continue  # a bad row, or EOS was inserted (transformers never inserts)
        if _holds_added_token(tok, conv, special=False):
            continue  # transformers also marks <think>-like tokens, which changes what templates render
        try:
            ids = tok.apply_chat_template(conv, chat_template=entry["source"], tokenize=True,
                                          sanitize_control_tokens=True, return_dict=False)
        except TypeError as err:  # transformers passes tools=None, which this template iterates
            assert name in TRANSFORMERS_CANNOT_RENDER, (name, err)
            continue
        assert enc.input_ids == list(ids), (name, conv_name)
        compared += 1
    # Templates without any end-of-turn marker get EOS inserted in every row: nothing to compare.
    assert compared >= 1 or name in NO_MARKER or name in TRANSFORMERS_CANNOT_RENDER


@pytest.mark.parametrize("name", TAGGED)
def test_tagged_templates_train_what_transformers_assistant_mask_marks(name):
    from transformers.utils.chat_template_utils import render_jinja_template

    entry, tok, template = _setup(name)
    for conv_name, conv in mc.CONVERSATIONS.items():
        enc = _row(name, conv_name)
        if isinstance(enc, RowError):
            assert enc.kind == "template_error", (conv_name, enc.message)
            continue
        _, indices = render_jinja_template(conversations=[conv], chat_template=entry["source"],
                                           return_assistant_tokens_mask=True, **tok.special_tokens_map)
        assert [tuple(s) for s in enc.trained_spans] == [tuple(s) for s in indices[0]], conv_name
        if _holds_added_token(tok, conv):
            continue  # transformers' mask needs the unsanitized ids, which differ here by design
        out = tok.apply_chat_template(conv, chat_template=entry["source"], tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        assert enc.input_ids == list(out["input_ids"]), conv_name
        assert [lab != IGNORE_INDEX for lab in enc.labels] == [bool(m) for m in out["assistant_masks"]], conv_name
