#!/usr/bin/env python3
"""Regenerate the shared masking vectors in test/fixtures/masking/.

For every built-in chat template (plus the TRL llama3 template with {% generation %} tags and a
plain template that emits no end-of-turn token) this writes a small byte-level BPE tokenizer with
that family's special tokens (tokenizer.json + tokenizer_config.json) and vectors.json: per case
the conversation, the rendered text, input_ids, labels and trained character spans, as produced
by qlora_studio.data.encode_conversation. The TypeScript previewer is held to these files.

It also writes the real-template corpus vectors, test/fixtures/masking/corpus/ (see
scripts/masking_corpus.py): per template × conversation the rendered text, input_ids and trained
token ranges, or the bad-row verdict and reason.

Tokenizers are only (re)built when missing or with --rebuild-tokenizers, so vectors stay tied to
the committed tokenizer files. Usage: .venv/bin/python scripts/gen_masking_vectors.py [--check]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import masking_corpus  # noqa: E402  (a sibling module of this script)

OUT = ROOT / "test" / "fixtures" / "masking"
REAL = ROOT / "test" / "fixtures" / "chat-templates"

# Family -> special tokens, and which chat template the cases use.
FAMILIES: dict[str, dict] = {
    "chatml": {"bos": None, "eos": "<|im_end|>", "extra": ["<|im_start|>"], "template": "chatml"},
    "llama3": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "add_bos": True,
               "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"], "template": "llama3"},
    "llama3-generation": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>",
                          "extra": ["<|start_header_id|>", "<|end_header_id|>"],
                          "template": "file:llama3-training-generation.jinja"},
    "mistral": {"bos": "<s>", "eos": "</s>", "add_bos": True, "extra": ["[INST]", "[/INST]"], "template": "mistral"},
    "gemma": {"bos": "<bos>", "eos": "<eos>", "extra": ["<start_of_turn>", "<end_of_turn>"], "template": "gemma"},
    "phi3": {"bos": "<s>", "eos": "<|endoftext|>", "extra": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
             "template": "phi3"},
    "qwen": {"bos": None, "eos": "<|im_end|>", "extra": ["<|im_start|>", "<|endoftext|>"], "template": "qwen"},
    # No end-of-turn token in the template, and pad == eos: EOS must be inserted and trained.
    "plain-eos": {"bos": None, "eos": "</s>", "extra": [],
                  "template": "inline:{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"},
}

CONVERSATIONS = {
    "unicode": [
        {"role": "user", "content": "Wie geht's? 🚀 Ça va ?"},
        {"role": "assistant", "content": "  Très bien, danke! 日本語も少し。 "},
    ],
    "system_multi_turn": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "And an even one?"},
        {"role": "assistant", "content": "2\nThat is the only even prime."},
    ],
    "multi_turn": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Again, in French."},
        {"role": "assistant", "content": "Salut !"},
    ],
}

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "You are a helpful assistant. Answer briefly and correctly.",
    "Name a prime number. Seven is prime; two is the only even prime.",
    "Bonjour, ça va ? Très bien, merci. Salut ! Danke schön.",
    "日本語も少し話せます。こんにちは世界。",
    "user assistant system tool model role content messages",
]


def build_tokenizer(family: str, spec: dict, folder: Path, template_source: str) -> None:
    """Train a tiny byte-level BPE on CORPUS and save it with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = [t for t in (spec["bos"], spec["eos"], *spec["extra"]) if t]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = CORPUS + [m["content"] for conv in CONVERSATIONS.values() for m in conv]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    if spec.get("add_bos"):
        bos = spec["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": spec["bos"],
        "eos_token": spec["eos"],
        "pad_token": spec["eos"],  # pad == eos on purpose: the rule must still train EOS
        "model_max_length": 4096,
        "chat_template": template_source,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")


def template_source(spec: dict) -> str:
    """Jinja source of a family's template: built-in name, fixture file, or inline."""
    from qlora_studio.data.templates import builtin_template_source

    name = spec["template"]
    if name.startswith("file:"):
        return (REAL / name[5:]).read_text(encoding="utf-8")
    if name.startswith("inline:"):
        return name[7:]
    return builtin_template_source(name)


def cases_for(family: str) -> list[dict]:
    """The cases of a family: every conversation with train_on assistant, plus variants."""
    cases = [{"name": name, "train_on": "assistant", "max_seq_len": 512} for name in CONVERSATIONS]
    if family == "chatml":
        cases += [{"name": "system_multi_turn", "train_on": t, "max_seq_len": 512} for t in ("completion", "all")]
        cases.append({"name": "system_multi_turn", "train_on": "assistant", "max_seq_len": 40})
        cases.append({"name": "system_multi_turn", "train_on": "completion", "max_seq_len": 30})
    return cases


def compute_vectors(family: str, folder: Path) -> dict:
    """Vectors for one family from the committed tokenizer in ``folder``."""
    from transformers import PreTrainedTokenizerFast

    from qlora_studio.data import RowError, encode_conversation
    from qlora_studio.data.templates import ChatTemplate

    spec = FAMILIES[family]
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"),
                                        bos_token=config["bos_token"], eos_token=config["eos_token"],
                                        pad_token=config["pad_token"])
    template = ChatTemplate(template_source(spec), family, now=masking_corpus.VECTOR_NOW)
    out_cases = []
    for case in cases_for(family):
        messages = CONVERSATIONS[case["name"]]
        entry = dict(case, messages=messages)
        try:
            enc = encode_conversation(messages, tokenizer, template, case["train_on"], case["max_seq_len"])
        except RowError as err:
            entry["error"] = {"kind": err.kind}
        else:
            entry.update(text=enc.text, input_ids=enc.input_ids, labels=enc.labels,
                         trained_spans=[list(s) for s in enc.trained_spans], truncated=enc.truncated)
        out_cases.append(entry)
    return {"family": family, "template": spec["template"], "bos_token": config["bos_token"],
            "eos_token": config["eos_token"], "pad_token": config["pad_token"], "cases": out_cases}


def _trained_ranges(labels: list[int]) -> list[list[int]]:
    """Half-open token index ranges whose labels are not -100."""
    out: list[list[int]] = []
    for k, label in enumerate(labels):
        if label == -100:
            continue
        if out and out[-1][1] == k:
            out[-1][1] = k + 1
        else:
            out.append([k, k + 1])
    return out


def corpus_cases() -> list[dict]:
    """Every conversation with train_on assistant, plus completion, all and a truncation."""
    cases = [{"conversation": name, "train_on": "assistant", "max_seq_len": 4096}
             for name in masking_corpus.CONVERSATIONS]
    cases += [{"conversation": "system_multi_turn", "train_on": t, "max_seq_len": 4096} for t in ("completion", "all")]
    cases.append({"conversation": "system_multi_turn", "train_on": "assistant", "max_seq_len": 24})
    return cases


def compute_corpus_vectors(entry: dict) -> dict:
    """Vectors of one corpus template (format in test/fixtures/masking/README.md)."""
    from qlora_studio.data import RowError, encode_conversation
    from qlora_studio.data.templates import ChatTemplate
    from qlora_studio.data.tokenize import special_token_texts

    tokenizer = masking_corpus.load_tokenizer(entry)
    template = ChatTemplate(entry["source"], entry["name"], now=masking_corpus.VECTOR_NOW)
    base = masking_corpus.base_tokenizer(entry["tokenizer"])
    added = masking_corpus.tokenizer_json({"model": base["model"], "added_tokens": []},
                                          masking_corpus.added_tokens(entry["source"], entry["bos_token"],
                                                                      entry["eos_token"]))["added_tokens"]
    out_cases = []
    for case in corpus_cases():
        messages = masking_corpus.CONVERSATIONS[case["conversation"]]
        entry_out = dict(case)
        try:
            enc = encode_conversation(messages, tokenizer, template, case["train_on"], case["max_seq_len"])
        except RowError as err:
            entry_out["error"] = {"kind": err.kind, "message": err.message}
        else:
            entry_out.update(text=enc.text, input_ids=enc.input_ids, trained=_trained_ranges(enc.labels),
                             trained_spans=[list(sp) for sp in enc.trained_spans], truncated=enc.truncated)
        out_cases.append(entry_out)
    return {"template": entry["name"], "template_file": entry["origin"],
            "tokenizer_file": "corpus/" + masking_corpus.TOKENIZER_FILES[entry["tokenizer"]],
            "bos_token": entry["bos_token"], "eos_token": entry["eos_token"], "pad_token": entry["eos_token"],
            "added_tokens": [{"id": a["id"], "content": a["content"], "special": a["special"]} for a in added],
            "special_texts": list(special_token_texts(tokenizer)), "cases": out_cases}


def _corpus_files() -> dict[Path, str]:
    """Every corpus vector file's path and text."""
    files: dict[Path, str] = {}
    convs = {"conversations": masking_corpus.CONVERSATIONS}
    files[masking_corpus.OUT / "conversations.json"] = json.dumps(convs, indent=1, ensure_ascii=False) + "\n"
    for entry in masking_corpus.template_entries():
        vec = compute_corpus_vectors(entry)
        lines = [json.dumps({k: v for k, v in vec.items() if k != "cases"}, ensure_ascii=False)[:-1] + ', "cases": [']
        lines += [" " + json.dumps(c, ensure_ascii=False) + ("," if i < len(vec["cases"]) - 1 else "")
                  for i, c in enumerate(vec["cases"])]
        files[masking_corpus.OUT / "vectors" / f"{entry['name']}.json"] = "\n".join(lines) + "\n]}\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) every family's tokenizer and vectors.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a committed vectors.json is stale")
    parser.add_argument("--rebuild-tokenizers", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for family, spec in FAMILIES.items():
        folder = OUT / family
        if not args.check and (args.rebuild_tokenizers or not (folder / "tokenizer.json").exists()):
            build_tokenizer(family, spec, folder, template_source(spec))
        text = json.dumps(compute_vectors(family, folder), indent=1, ensure_ascii=False) + "\n"
        target = folder / "vectors.json"
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(family)
        else:
            target.write_text(text, encoding="utf-8")
    if not args.check and (args.rebuild_tokenizers or not (masking_corpus.OUT / "tokenizer.json").exists()):
        masking_corpus.build_base_tokenizer(masking_corpus.OUT / "tokenizer.json")
    if not args.check and (args.rebuild_tokenizers or not (masking_corpus.OUT / "tokenizer-metaspace.json").exists()):
        masking_corpus.build_metaspace_tokenizer(masking_corpus.OUT / "tokenizer-metaspace.json")
    wanted = _corpus_files()
    present = set((masking_corpus.OUT / "vectors").glob("*.json"))
    for path, text in wanted.items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(OUT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for extra in present - set(wanted):
        if args.check:
            stale.append(f"{extra.relative_to(OUT)} (no such template)")
        else:
            extra.unlink()
    if stale:
        print(f"stale masking vectors: {', '.join(stale)}; run scripts/gen_masking_vectors.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
