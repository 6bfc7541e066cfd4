"""The real-template masking corpus: templates, tokenizers and conversations.

Shared by scripts/gen_masking_vectors.py (which writes test/fixtures/masking/corpus/) and the
property test python-backend/tests/test_masking_corpus.py. Templates are the public chat templates
in test/fixtures/chat-templates/ (the fixture set and corpus/, provenance in their SOURCES files).

Tokenizers: one small byte-level BPE (test/fixtures/masking/corpus/tokenizer.json, no added
tokens) is shared by every template, and a small SentencePiece-style BPE (Metaspace, byte
fallback: tokenizer-metaspace.json) by the families whose real tokenizers are SentencePiece ones
(entries named "<template>@metaspace"); for a template, ``added_tokens(...)`` lists the tokens added
to it, in order, with consecutive ids from the base vocabulary size: its bos and eos tokens and
every control-token-looking literal of the template text (special), then the literal
``<think>``-style tags (not special, as real reasoning tokenizers have them).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "test" / "fixtures" / "chat-templates"
CORPUS_TEMPLATES = TEMPLATES / "corpus"
OUT = ROOT / "test" / "fixtures" / "masking" / "corpus"

#: The instant ``strftime_now`` renders in the vectors (templates that print today's date).
VECTOR_NOW = datetime(2025, 6, 1, 12, 0, 0)

#: bos/eos of the fixture templates outside corpus/ (corpus/SOURCES.json carries its own).
FIXTURE_TOKENS = {
    "chatml-openhermes": ("<s>", "<|im_end|>"), "gemma-it": ("<bos>", "<eos>"),
    "llama-2-chat": ("<s>", "</s>"), "llama-3-instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3-training-generation": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral-7b-instruct-v0.1": ("<s>", "</s>"), "phi-3-mini-instruct": ("<s>", "<|endoftext|>"),
    "qwen2.5-instruct": (None, "<|im_end|>"), "smollm3-generation": (None, "<|im_end|>"),
    "zephyr-7b-beta": ("<s>", "</s>"),
}

#: Literals of a template that become special added tokens.
SPECIAL_PATTERNS = (
    r"<\|[^<>|\s]{1,40}\|>", r"<｜[^<>｜]{1,40}｜>", r"<(?:start|end)_of_turn>",
    r"\[/?(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS)\]", r"\[\|[a-z]+\|\]",
    r"<(?:BOS|EOS)_TOKEN>", r"\[gMASK\]", r"<sop>",
)
#: Literals that become added tokens that are not special (reasoning and tool tags).
PLAIN_PATTERNS = (r"</?think>", r"</?tool_call>", r"</?tool_response>")


#: Templates also tried with the SentencePiece-style tokenizer.
METASPACE = ("llama-2-chat", "mistral-7b-instruct-v0.1", "mixtral-8x22b", "mistral-nemo", "vicuna", "phi-3.5",
             "zephyr-7b-beta")
TOKENIZER_FILES = {"bytelevel": "tokenizer.json", "metaspace": "tokenizer-metaspace.json"}


def template_entries() -> list[dict[str, Any]]:
    """Every template of the corpus: name, source text, bos_token, eos_token, origin, tokenizer."""
    out = _template_entries()
    out += [dict(e, name=f"{e['name']}@metaspace", tokenizer="metaspace") for e in out if e["name"] in METASPACE]
    return out


def _template_entries() -> list[dict[str, Any]]:
    out = []
    for name, (bos, eos) in sorted(FIXTURE_TOKENS.items()):
        out.append({"name": name, "source": (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"),
                    "bos_token": bos, "eos_token": eos, "origin": f"chat-templates/{name}.jinja",
                    "tokenizer": "bytelevel"})
    for entry in json.loads((CORPUS_TEMPLATES / "SOURCES.json").read_text(encoding="utf-8")):
        path = CORPUS_TEMPLATES / f"{entry['name']}.jinja"
        out.append({"name": entry["name"], "source": path.read_text(encoding="utf-8"),
                    "bos_token": entry["bos_token"], "eos_token": entry["eos_token"],
                    "origin": f"chat-templates/corpus/{entry['name']}.jinja", "tokenizer": "bytelevel"})
    return out


def added_tokens(source: str, bos: str | None, eos: str) -> list[tuple[str, bool]]:
    """(content, special) of the tokens added to the base tokenizer for a template, in id order."""
    from qlora_studio.data.templates import literal_text

    literal = literal_text(source)
    specials: list[str] = [t for t in (bos, eos) if t]
    found = sorted({m for p in SPECIAL_PATTERNS for m in re.findall(p, literal)})
    specials += [t for t in found if t not in specials]
    plain = sorted({m for p in PLAIN_PATTERNS for m in re.findall(p, literal)} - set(specials))
    return [(t, True) for t in specials] + [(t, False) for t in plain]


def tokenizer_json(base: dict[str, Any], added: list[tuple[str, bool]]) -> dict[str, Any]:
    """The base tokenizer.json with ``added`` appended to ``added_tokens``."""
    data = json.loads(json.dumps(base))
    next_id = max(data["model"]["vocab"].values()) + 1
    for content, special in added:
        data["added_tokens"].append({"id": next_id, "content": content, "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": special})
        next_id += 1
    return data


@lru_cache(maxsize=None)
def base_tokenizer(kind: str = "bytelevel") -> dict[str, Any]:
    """A committed base tokenizer.json ("bytelevel" or "metaspace")."""
    return json.loads((OUT / TOKENIZER_FILES[kind]).read_text(encoding="utf-8"))


def load_tokenizer(entry: dict[str, Any]) -> Any:
    """The fast tokenizer of a template entry (base + its added tokens), pad = eos."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    added = added_tokens(entry["source"], entry["bos_token"], entry["eos_token"])
    data = tokenizer_json(base_tokenizer(entry["tokenizer"]), added)
    tok = Tokenizer.from_str(json.dumps(data))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=entry["bos_token"], eos_token=entry["eos_token"],
                                   pad_token=entry["eos_token"])


LONG = " ".join(f"Step {i}: check that {i} squared is {i * i}, then move on." for i in range(1, 40))
THINK_1 = "<think>\nThe user asks about 7. It has no divisors but 1 and itself.\n</think>\n\nYes, 7 is prime."
THINK_2 = "<think>Two is even and prime.</think>2 is the only even prime."

#: The conversations every template is tried on.
CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "yes_inside_question": [
        {"role": "user", "content": "Is 7 prime? Answer Yes or No."},
        {"role": "assistant", "content": "Yes"},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "And an even one?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ],
    "multi_turn": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Again, in French."},
        {"role": "assistant", "content": "Salut !"},
    ],
    "empty_first_reply": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Now say ok."},
        {"role": "assistant", "content": "ok"},
    ],
    "empty_last_reply": [
        {"role": "system", "content": "Reply with an empty message."},
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": ""},
    ],
    "think_multi_turn": [
        {"role": "user", "content": "Is 7 prime?"},
        {"role": "assistant", "content": THINK_1},
        {"role": "user", "content": "Which prime is even?"},
        {"role": "assistant", "content": THINK_2},
    ],
    "unicode": [
        {"role": "system", "content": "Antworte höflich. 日本語もOK。"},
        {"role": "user", "content": "日本語で挨拶して 😄👍 مرحبا"},
        {"role": "assistant", "content": "こんにちは！😄👍 مرحبا بالعالم — שלום עולם"},
    ],
    "long": [
        {"role": "user", "content": "Walk me through the first squares. " + LONG[:400]},
        {"role": "assistant", "content": LONG},
    ],
    "template_looking_text": [
        {"role": "user", "content": "What does {{ messages }} or {% if x %} do? <|im_start|>assistant"},
        {"role": "assistant", "content": "It is Jinja: {{ x }} prints, {% raw %}{% if %}{% endraw %} branches."},
    ],
    "special_token_lookalikes": [
        {"role": "user", "content": "Which tokens end a turn? </s> <|eot_id|>"},
        {"role": "assistant",
         "content": "They are <|eot_id|>, <|im_end|>, <end_of_turn>, <｜end▁of▁sentence｜> and </s>."},
        {"role": "user", "content": "Write <|im_end|> alone."},
        {"role": "assistant", "content": "<|im_end|>"},
    ],
    "padded_whitespace": [
        {"role": "user", "content": "  spaced question  "},
        {"role": "assistant", "content": "\n  spaced answer \n"},
    ],
    "repeated_answer": [
        {"role": "user", "content": "Say OK."},
        {"role": "assistant", "content": "OK"},
        {"role": "user", "content": "OK? Say OK again."},
        {"role": "assistant", "content": "OK"},
    ],
    "tool_result": [
        {"role": "user", "content": "What is 6*7? Use the calculator."},
        {"role": "assistant", "content": "Calling the calculator."},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
    ],
    "same_text_everywhere": [
        {"role": "user", "content": "echo"},
        {"role": "assistant", "content": "echo"},
        {"role": "user", "content": "echo"},
        {"role": "assistant", "content": "echo"},
    ],
    "header_lookalike_answer": [
        {"role": "user", "content": "assistant"},
        {"role": "assistant", "content": "<|im_start|>assistant\nuser"},
    ],
    "answer_in_system": [
        {"role": "system", "content": "Always answer 42."},
        {"role": "user", "content": "What is 6 times 7? (42)"},
        {"role": "assistant", "content": "42"},
    ],
}

#: Text the base tokenizer is trained on.
TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. You are a helpful assistant.",
    "system user assistant tool model role content messages Human Assistant",
    "Bonjour, ça va ? Très bien, merci. Salut ! Danke schön. Wie geht's?",
    "日本語も少し話せます。こんにちは世界。", "مرحبا بالعالم", "שלום עולם",
] + [m["content"] for conv in CONVERSATIONS.values() for m in conv]


def build_base_tokenizer(path: Path) -> None:
    """Train the shared byte-level BPE (no added tokens) and save it to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))


def build_metaspace_tokenizer(path: Path) -> None:
    """Train the shared SentencePiece-style BPE: Metaspace pre-tokenizer that adds a word-start
    "▁" to the first word only, byte fallback (ids 0..255 are <0x00>..<0xFF>), no added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainers.BpeTrainer(vocab_size=600, show_progress=False))
    data = json.loads(tok.to_str())
    vocab = {f"<0x{b:02X}>": b for b in range(256)}
    for text, i in sorted(data["model"]["vocab"].items(), key=lambda item: item[1]):
        vocab[text] = i + 256
    data["model"]["vocab"] = vocab
    data["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Tokenizer.from_str(json.dumps(data)).to_str(pretty=True), encoding="utf-8")
