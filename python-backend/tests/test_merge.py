"""Merging: unquantized base + adapter folded, verified against base+adapter, atomic and refusing overwrite."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import cli

from qlora_studio.merge import MergeError, merge_adapter


def test_merge_matches_base_plus_adapter(trained_run, tiny_dir, tmp_path, eval_rows):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = trained_run["run_dir"] / "adapter"
    seen = []
    res = merge_adapter(adapter, tmp_path / "merged", dtype="float32", progress=lambda f, m: seen.append(f))
    assert res["max_abs_logit_diff"] < 1e-3 * max(1.0, res["max_abs_logit"])
    assert res["verified"] is True and res["tolerance"] == pytest.approx(1e-3 * max(1.0, res["max_abs_logit"]))
    assert seen[0] < seen[-1] == 1.0 and seen == sorted(seen)
    out = tmp_path / "merged"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "README.md"):
        assert (out / name).exists(), name
    assert not (out / "adapter_config.json").exists()

    # Independent check: the merged folder alone reproduces base+adapter on an eval prompt.
    tok = AutoTokenizer.from_pretrained(out)
    text = tok.apply_chat_template(eval_rows[0]["messages"][:1], add_generation_prompt=True, tokenize=False)
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir / "model", dtype=torch.float32), adapter)
    with torch.no_grad():
        a, b = merged(input_ids=ids).logits, ref(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-3)
    answer = tok.decode(merged.generate(ids, max_new_tokens=6, do_sample=False)[0, ids.shape[1]:], skip_special_tokens=True)
    assert answer.strip() == eval_rows[0]["messages"][1]["content"]


def test_merge_refuses_non_empty_output_and_non_adapters(trained_run, tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(MergeError, match="not empty"):
        merge_adapter(trained_run["run_dir"] / "adapter", occupied)
    assert (occupied / "keep.txt").read_text() == "mine"
    with pytest.raises(MergeError, match="adapter_config.json"):
        merge_adapter(tmp_path, tmp_path / "x")


def test_cli_merge_bf16_prints_verification(trained_run, tmp_path):
    res = cli("merge", str(trained_run["run_dir"] / "adapter"), "--out", str(tmp_path / "m16"), "--dtype", "bfloat16")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "verification: max |logit diff|" in res.stdout
    meta = json.loads((tmp_path / "m16" / "qlora_studio_merge.json").read_text())
    assert meta["dtype"] == "bfloat16" and meta["max_abs_logit_diff"] < 0.05 * meta["max_abs_logit"]
    cfg = json.loads((tmp_path / "m16" / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    res = cli("merge", str(trained_run["run_dir"] / "adapter"), "--out", str(tmp_path / "m16"))
    assert res.returncode == 2 and "not empty" in res.stderr


def test_merge_verdict_holds_the_difference_to_the_dtype_tolerance():
    from qlora_studio.merge.merge import merge_verdict

    assert merge_verdict(0.12, 15.4, "bfloat16") == (True, pytest.approx(0.77))
    assert merge_verdict(0.9, 15.4, "bfloat16")[0] is False
    assert merge_verdict(0.012, 0.5, "float32") == (False, pytest.approx(1e-3))
