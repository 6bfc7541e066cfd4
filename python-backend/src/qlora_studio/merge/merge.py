"""The merge itself: load, reference logits, merge_and_unload, verify, save through a temp folder."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from ..adapters import adapter_info
from ..publish import publish_dir
from ..train.model import check_local_model
from ..train.modelcard import model_card, render_prompt_example, write_card

Progress = Callable[[float, str], None]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json")
VERIFY_MESSAGES = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write one sentence about the sea."}],
    [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi."},
     {"role": "user", "content": "Count to five."}],
]


class MergeError(UsageError):
    """The merge cannot start (bad adapter folder, unknown dtype)."""


class OutputTakenError(MergeError):
    """The output folder of a merge is not empty."""

    protocol_code = "conflict"


def _verify_inputs(tokenizer: Any) -> list[Any]:
    import torch

    texts = []
    for msgs in VERIFY_MESSAGES:
        if getattr(tokenizer, "chat_template", None):
            texts.append(tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
        else:
            texts.append(" ".join(m["content"] for m in msgs))
    return [torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"][:256]]) for t in texts]


def _logits(model: Any, inputs: list[Any]) -> list[Any]:
    import torch

    dev = next(model.parameters()).device
    with torch.no_grad():
        return [model(input_ids=x.to(dev)).logits.float().cpu() for x in inputs]


# How far the merged model's logits may stray from base+adapter unmerged, relative to the largest
# |logit| (at least 1): folding the adapter rounds the merged weights once in the target dtype.
# bf16 keeps 8 significand bits (relative step 2^-8), fp16 11, fp32 24; the allowance is a few
# such steps accumulated through the layers.
RELATIVE_TOLERANCE: dict[str, float] = {"float32": 1e-3, "float16": 1e-2, "bfloat16": 5e-2}


def merge_verdict(diff: float, scale: float, dtype: str) -> tuple[bool, float]:
    """Whether a merge matches base+adapter: (verified, tolerance) for max |logit diff| `diff`."""
    tolerance = RELATIVE_TOLERANCE[dtype] * max(1.0, scale)
    return diff <= tolerance, tolerance


def merge_adapter(adapter_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, dtype: str = "bfloat16",
                  progress: Progress | None = None, overwrite: bool = False, base_model: str | None = None) -> dict[str, Any]:
    """Merge adapter_dir into its (unquantized) base and save a standalone model in out_dir.

    Returns {out_dir, base_model, adapter_dir, dtype, max_abs_logit_diff, max_abs_logit, tolerance,
    verified, prompts, seconds}; verified says max_abs_logit_diff is within tolerance (merge_verdict). max_abs_logit_diff compares the merged model with base+adapter unmerged, in the
    same dtype, on fixed prompts. Refuses a non-empty out_dir unless overwrite=True; the folder
    appears only when complete (written to a temp sibling, then renamed).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = progress or (lambda fraction, message: None)
    t0 = time.perf_counter()
    adapter = Path(adapter_dir).resolve()
    out = Path(out_dir).resolve()
    if not (adapter / "adapter_config.json").exists():
        raise MergeError(f"{adapter} is not an adapter folder (no adapter_config.json); pick a run's adapter/ "
                         "or a checkpoints/step-N folder")
    if dtype not in ("bfloat16", "float16", "float32"):
        raise MergeError(f"dtype {dtype!r} is not supported; use bfloat16, float16 or float32")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputTakenError(f"{out} is not empty; choose another folder or allow overwriting")
    base = base_model or adapter_info(adapter)["base_model"]
    check_local_model(base, base.startswith(("/", "./", "../", "~")))
    torch_dtype = getattr(torch, dtype)
    device_map = {"": 0} if torch.cuda.is_available() else {"": "cpu"}

    report(0.05, f"loading {base} unquantized in {dtype}")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, device_map=device_map)
    tok_src = adapter if (adapter / "tokenizer_config.json").exists() else Path(base)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_src))
    report(0.35, "loading the adapter")
    model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    inputs = _verify_inputs(tokenizer)
    report(0.45, "computing reference logits (base + adapter, unmerged)")
    reference = _logits(model, inputs)
    report(0.55, "merging the adapter into the base weights")
    merged = model.merge_and_unload()
    report(0.65, "verifying the merged model")
    after = _logits(merged, inputs)
    diff = max(float((a - b).abs().max()) for a, b in zip(reference, after))
    scale = max(float(a.abs().max()) for a in reference)

    report(0.75, "saving safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tok_src / name).exists():
                shutil.copyfile(tok_src / name, tmp / name)
        verified, tolerance = merge_verdict(diff, scale, dtype)
        result = {"out_dir": str(out), "base_model": base, "adapter_dir": str(adapter), "dtype": dtype,
                  "max_abs_logit_diff": diff, "max_abs_logit": scale, "tolerance": tolerance,
                  "verified": verified, "prompts": len(inputs)}
        card = model_card(title=f"Merged model: {out.name}", base_model=base, recipe_text=_recipe_text(adapter),
                          metrics={"dtype": dtype, "max_abs_logit_diff vs base+adapter": diff,
                                   "tolerance": tolerance, "verified": verified},
                          prompt_example=render_prompt_example(tokenizer), kind="merged",
                          notes=[f"Merged from the adapter `{adapter}`."])
        write_card(tmp / "README.md", card)
        (tmp / "qlora_studio_merge.json").write_text(json.dumps(result, indent=2) + "\n")
        report(0.95, "publishing the merged folder")
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result["seconds"] = round(time.perf_counter() - t0, 2)
    report(1.0, f"merged into {out} (max |logit diff| {diff:.3g})")
    return result


def _recipe_text(adapter: Path) -> str | None:
    # A run's adapter sits in runs/<id>/adapter, next to the frozen recipe.
    for candidate in (adapter.parent / "recipe.qlora.yaml", adapter.parent.parent.parent / "recipe.qlora.yaml"):
        if candidate.exists():
            return candidate.read_text(encoding="utf-8")
    return None
