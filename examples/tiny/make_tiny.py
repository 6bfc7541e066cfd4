#!/usr/bin/env python3
"""Build the embedded tiny example: a chat dataset, a tokenizer trained on it and a tiny Llama.

Everything is deterministic (fixed seeds, sorted inputs), so two runs write byte-identical
files, and nothing is downloaded. The outputs (`model/`, `data/`) are git-ignored; scripts and
tests call this file when they are missing.

The task is a fixed fact table (country -> capital) asked in many phrasings. The eval set holds
phrasings of each country that training never shows, so a model that answers them has learnt to
find the country in the question, not to memorise whole lines.

Usage: python examples/tiny/make_tiny.py [--out DIR] [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

# Bump when the output changes, so a stale build is rebuilt instead of trusted.
FORMAT_VERSION = "3"

CAPITALS = [
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"),
    ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Portugal", "Lisbon"), ("Greece", "Athens"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
    ("Ireland", "Dublin"), ("Belgium", "Brussels"), ("Hungary", "Budapest"), ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "Delhi"),
    ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"), ("Russia", "Moscow"), ("Turkey", "Ankara"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Nepal", "Kathmandu"), ("Ghana", "Accra"), ("Mali", "Bamako"),
    ("Laos", "Vientiane"), ("Fiji", "Suva"),
]

# The country is always the last word, so the answer depends on a token at a short distance:
# learnable by a few-million-parameter model in about a minute on two CPU cores.

QUESTIONS = [
    "What is the capital of {c}?",
    "Name the capital of {c}.",
    "Which city is the capital of {c}?",
    "Tell me the capital city of {c}.",
    "capital of {c}?",
    "What city is the seat of government of {c}?",
    "Quick question: the capital of {c}?",
    "I forgot the capital of {c}.",
    "Do you know the capital of {c}?",
    "Give me the capital of {c}, please.",
]

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

# ChatML. The assistant turn ends with <|im_end|> (the eos), which is trained, so the model learns
# to stop; the newline after it belongs to the template, not to the answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

N_EVAL = 40
LM_HEAD_STD = 0.1
N_TRAIN = 300


def build_rows(seed: int = 1234) -> tuple[list[dict], list[dict]]:
    """Return (train, eval) chat rows; eval uses (country, phrasing) pairs never seen in train."""
    rng = random.Random(seed)
    pairs = [(ci, qi) for ci in range(len(CAPITALS)) for qi in range(len(QUESTIONS))]
    rng.shuffle(pairs)
    # Hold out at most two phrasings per country so every country is still taught.
    held: list[tuple[int, int]] = []
    per_country: dict[int, int] = {}
    for ci, qi in pairs:
        if len(held) < N_EVAL and per_country.get(ci, 0) < 2:
            held.append((ci, qi))
            per_country[ci] = per_country.get(ci, 0) + 1
    held_set = set(held)
    train_pairs = [p for p in pairs if p not in held_set][:N_TRAIN]

    def row(ci: int, qi: int) -> dict:
        country, capital = CAPITALS[ci]
        return {"messages": [
            {"role": "user", "content": QUESTIONS[qi].format(c=country)},
            {"role": "assistant", "content": capital},
        ]}

    return [row(*p) for p in train_pairs], [row(*p) for p in held]


def train_tokenizer(texts: list[str]):
    """Train a small byte-level BPE on the rendered conversations; returns a tokenizers.Tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def render(row: dict) -> str:
    """Render a row with the ChatML template (the same text the trainer sees)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in row["messages"])


def build(out: Path) -> None:
    """Write data/ and model/ under out (each written to a temp folder, then renamed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    train, evals = build_rows()
    staging = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=out))
    try:
        data_dir = staging / "data"
        data_dir.mkdir()
        for name, rows in (("train.jsonl", train), ("eval.jsonl", evals)):
            with (data_dir / name).open("w", encoding="utf-8", newline="\n") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")

        # The rendered turns are exactly what the tokenizer has to split well.
        corpus = [render(r) for r in train + evals]
        raw = build_tokenizer_corpus(corpus)
        tok = train_tokenizer(raw)
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="<|im_end|>",
            pad_token="<pad>",
            unk_token=None,
            additional_special_tokens=["</s>", "<|im_start|>"],
            model_max_length=512,
            clean_up_tokenization_spaces=False,
        )
        fast.chat_template = CHAT_TEMPLATE
        model_dir = staging / "model"
        fast.save_pretrained(model_dir)
        # transformers 5 keeps the template in chat_template.jinja; older readers (and tools that
        # only parse JSON) look in tokenizer_config.json, so it is written there as well.
        cfg_path = model_dir / "tokenizer_config.json"
        tok_cfg = json.loads(cfg_path.read_text())
        tok_cfg["chat_template"] = CHAT_TEMPLATE
        cfg_path.write_text(json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")

        torch.manual_seed(0)
        cfg = LlamaConfig(
            vocab_size=len(fast),
            hidden_size=256,
            intermediate_size=704,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            bos_token_id=fast.bos_token_id,
            eos_token_id=fast.eos_token_id,
            pad_token_id=fast.pad_token_id,
            torch_dtype="float32",
        )
        model = LlamaForCausalLM(cfg)
        # A frozen output head at the usual 0.02 init caps every logit near 5 (RMS-normed hidden
        # states times small rows), so no adapter could make an answer confident; pretrained
        # heads are far larger. Scale it like one.
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, LM_HEAD_STD)
        model.generation_config.eos_token_id = fast.eos_token_id
        model.generation_config.pad_token_id = fast.pad_token_id
        model.save_pretrained(model_dir, safe_serialization=True)
        (staging / "STAMP").write_text(stamp() + "\n")

        for name in ("data", "model"):
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            os.rename(staging / name, dest)
        os.replace(staging / "STAMP", out / "model" / ".tiny-stamp")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_tokenizer_corpus(rendered: list[str]) -> list[str]:
    """The texts the BPE is trained on, sorted so the merges never depend on row order."""
    return sorted(rendered)


def stamp() -> str:
    """A fingerprint of this script's logic, so edits to it trigger a rebuild."""
    return hashlib.sha256((FORMAT_VERSION + Path(__file__).read_text()).encode()).hexdigest()[:16]


def is_fresh(out: Path) -> bool:
    """True when out already holds a build made by this exact script."""
    s = out / "model" / ".tiny-stamp"
    return (
        s.exists()
        and s.read_text().strip() == stamp()
        and (out / "model" / "model.safetensors").exists()
        and (out / "data" / "train.jsonl").exists()
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry: build into --out (default: this folder) unless a fresh build is already there."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="folder that receives model/ and data/ (default: examples/tiny)")
    ap.add_argument("--force", action="store_true", help="rebuild even when a fresh build exists")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.force and is_fresh(out):
        print(f"tiny example is up to date in {out}")
        return 0
    build(out)
    print(f"tiny example written to {out}/model and {out}/data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
