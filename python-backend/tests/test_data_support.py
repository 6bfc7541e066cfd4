"""Shared helpers for the data tests (no tests here): real recipes and committed tokenizers."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from qlora_studio.recipe import recipe_from_dict

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures"
DATA = FIXTURES / "data"
MASKING = FIXTURES / "masking"
REAL_TEMPLATES = FIXTURES / "chat-templates"


def make_recipe(train: str | Path, family: str = "chatml", recipe_dir: Path | None = None, **data: Any) -> Any:
    """A real, validated recipe whose base model folder is a committed fixture tokenizer."""
    d: dict[str, Any] = {"base_model": str(MASKING / family), "data": {"train": str(train)}}
    training = data.pop("training", None)
    d["data"].update(copy.deepcopy(data))
    if "chat_template" not in d["data"]:
        d["data"]["chat_template"] = family if family in ("chatml", "llama3", "mistral", "gemma", "phi3", "qwen") else "tokenizer"
    if training:
        d["training"] = training
    return recipe_from_dict(d, recipe_dir or DATA)


def fast_tokenizer(family: str) -> Any:
    """The committed tokenizer of a masking family, loaded the way the vectors were made."""
    import json

    from transformers import PreTrainedTokenizerFast

    folder = MASKING / family
    cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), bos_token=cfg["bos_token"],
                                   eos_token=cfg["eos_token"], pad_token=cfg["pad_token"])
