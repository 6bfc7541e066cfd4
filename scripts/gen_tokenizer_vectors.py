#!/usr/bin/env python3
"""Regenerate test/fixtures/tokenizer-parity/vectors.json.gz: Rust `tokenizers` ids and offsets.

For every tokenizer the TypeScript encoder (src/dataset/bpeEncoder.ts) must match: the real GPT-2
and Phi-3-mini tokenizers of test/fixtures/tokenizers/, variants of them (the same vocabulary with
another normalizer, pre-tokenizer, post-processor, unknown-token rule or added tokens: a JSON
patch of top-level keys and model fields, applied the same way by the TypeScript test), and every
tokenizer of test/fixtures/masking/. Each is run on generated hostile text (unicode, white-space
runs, emoji, long words, special-token look-alikes, the empty string) and rendered conversations,
encoded with `add_special_tokens=False`, plain (special tokens matched) and with
`split_special_tokens=True` (special tokens left as text). Offsets are code points, flattened ([s0, e0, s1, e1, ...]).
Usage: .venv/bin/python scripts/gen_tokenizer_vectors.py [--check]
"""
from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
import sys
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "test" / "fixtures"
OUT = FIX / "tokenizer-parity" / "vectors.json.gz"

EXTRA_ADDED = [
    {"id": 50257, "content": "<|l|>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
    {"id": 50258, "content": "<|r|>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": False},
    {"id": 50259, "content": "<|r|>x", "single_word": False, "lstrip": True, "rstrip": True, "normalized": True, "special": True},
    {"id": 50260, "content": " the", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"id": 50261, "content": "|>y", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
]
#: Llama-3's and Qwen2's pre-tokenizer patterns (Split, then ByteLevel without its own pattern).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                  r"|\s+(?!\S)|\s+")
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")


def split_byte_level(pattern: str) -> dict[str, Any]:
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}


def isolated(pattern: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


META = {"type": "Metaspace", "replacement": "\u2581", "split": True}
#: name -> (base tokenizer file, patch: top-level keys replaced, "model" keys merged, "added_tokens+" appended).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2": ("tokenizers/gpt2/tokenizer.json.gz", {}),
    "phi-3-mini": ("tokenizers/phi-3-mini/tokenizer.json.gz", {}),
    "gpt2-added-trim": ("tokenizers/gpt2/tokenizer.json.gz", {
        "added_tokens+": EXTRA_ADDED,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}),
    "gpt2-ignore-merges-no-regex": ("tokenizers/gpt2/tokenizer.json.gz", {
        "model": {"ignore_merges": True},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}}),
    "gpt2-llama3-split": ("tokenizers/gpt2/tokenizer.json.gz", {
        "model": {"ignore_merges": True}, "pre_tokenizer": split_byte_level(LLAMA3_PATTERN)}),
    "gpt2-qwen2-split-nfc": ("tokenizers/gpt2/tokenizer.json.gz", {
        "normalizer": {"type": "NFC"}, "pre_tokenizer": split_byte_level(QWEN2_PATTERN)}),
    "gpt2-digits-bytelevel": ("tokenizers/gpt2/tokenizer.json.gz", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}),
    "gpt2-multi-split": ("tokenizers/gpt2/tokenizer.json.gz", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        isolated(r"\p{N}{1,3}"), isolated("[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"), isolated(LLAMA3_PATTERN),
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}),
    "phi3-metaspace-first": ("tokenizers/phi-3-mini/tokenizer.json.gz", {
        "normalizer": None, "pre_tokenizer": {**META, "prepend_scheme": "first"}}),
    "phi3-metaspace-always-nosplit": ("tokenizers/phi-3-mini/tokenizer.json.gz", {
        "normalizer": None, "pre_tokenizer": {**META, "prepend_scheme": "always", "split": False}}),
    "phi3-metaspace-never": ("tokenizers/phi-3-mini/tokenizer.json.gz", {
        "normalizer": None, "pre_tokenizer": {**META, "prepend_scheme": "never"}}),
    "phi3-unk-fused": ("tokenizers/phi-3-mini/tokenizer.json.gz", {"model": {"byte_fallback": False, "fuse_unk": True}}),
    "phi3-unk-unfused-nfc": ("tokenizers/phi-3-mini/tokenizer.json.gz", {
        "model": {"byte_fallback": False, "fuse_unk": False},
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}}),
}
for _d in sorted(p.name for p in (FIX / "masking").iterdir() if (p / "tokenizer.json").exists()):
    VARIANTS[f"masking-{_d}"] = (f"masking/{_d}/tokenizer.json", {})
VARIANTS["masking-corpus-metaspace"] = ("masking/corpus/tokenizer-metaspace.json", {})

PIECES = [
    "Hello", " world", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \t ", "\u00a0", "\u3000", "\u0085", "\ufeff", "\u2028",
    "naïve", "cafe\u0301", "Zürich", "東京", "日本語の文章", "한국어", "שלום", "مرحبا", "Ελληνικά", "𝔘𝔫𝔦", "😄", "👍🏽",
    "👨‍👩‍👧", "🇵🇹", "\u200d", "a" * 120, "9" * 40, "3.14159", "2026", "don't", "He'S", "we'll", "'ve", "''",
    "<|endoftext|>", "<|endoftext|", "<|endoftext|>>", "<<|endoftext|>", "<s>", "</s>", "</s>  x", "<unk>",
    "<|user|>", "<|user|>\n", "<|end|> \n ", "<|assistant|>", "<|im_start|>", "<|im_end|>", "<0x41>", "\u2581", "\u2581\u2581x",
    "<|l|>", "  <|l|>", "<|r|>  ", "<|r|>x", " <|r|>x ", " the", "the", "def f(x):\n    return x * 2",
    "{\"key\": [1, 2, 3]}", "—", "…", "\x00", "\x1b[0m", "~~~", "###", "!!!???", "<|start_header_id|>",
    "12345678", "<|l|>y", "I'M", "WE'LL", "x\r\n\r\ny", "a.\n\n  b", "\u212b", "\uac00\u11a8",
]


def hostile_texts(r: random.Random) -> list[str]:
    texts = ["", " ", "  ", "\n", "a", " a", "a ", "<|endoftext|>", "<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>",
             "\u2581hello \u2581 world", "x" * 600, " " * 50 + "end", "\n" * 20, "e\u0301\u0301", "𝔘" * 30]
    for _ in range(50):
        n = r.randint(1, 16)
        texts.append("".join(r.choice(PIECES) + (r.choice(["", " ", "  ", "\n"]) if r.random() < 0.6 else "") for _ in range(n)))
    return texts


def conversation_texts(r: random.Random) -> list[str]:
    words = "the model answer question Paris 東京 café 😄 42 3.14 (see below) \"quoted\" code: def f(x): return x*2".split(" ")
    out = []
    for _ in range(4):
        parts = []
        for role in ["system", "user", "assistant", "user", "assistant"][: r.randint(2, 5)]:
            body = " ".join(r.choice(words) for _ in range(r.randint(5, 60)))
            parts.append(f"<|im_start|>{role}\n{body}<|im_end|>\n" if r.random() < 0.5 else f"<|{role}|>\n{body}<|end|>\n")
        out.append("".join(parts))
    return out


def load_json(rel: str) -> dict[str, Any]:
    path = FIX / rel
    raw = gzip.decompress(path.read_bytes()) if rel.endswith(".gz") else path.read_bytes()
    return json.loads(raw)


def patched(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key == "model":
            out["model"].update(value)
        elif key == "added_tokens+":
            out["added_tokens"] = list(out.get("added_tokens") or []) + value
        else:
            out[key] = value
    return out


def build() -> dict[str, Any]:
    r = random.Random(20261129)
    texts = hostile_texts(r) + conversation_texts(r)
    result: dict[str, Any] = {"texts": texts, "tokenizers": {}}
    for name, (rel, patch) in VARIANTS.items():
        tok = Tokenizer.from_str(json.dumps(patched(load_json(rel), patch)))
        runs = {}
        for mode, split in (("normal", False), ("plain", True)):
            tok.encode_special_tokens = split
            encs = [tok.encode(t, add_special_tokens=False) for t in texts]
            runs[mode] = [[e.ids, [x for o in e.offsets for x in o]] for e in encs]
        result["tokenizers"][name] = {"file": rel, "patch": patch, **runs}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when the committed vectors are stale")
    args = ap.parse_args()
    text = json.dumps(build(), ensure_ascii=False, separators=(",", ":")) + "\n"
    if args.check:
        if not OUT.exists() or gzip.decompress(OUT.read_bytes()).decode("utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run .venv/bin/python scripts/gen_tokenizer_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
