"""The fused LoRA forward is peft's function: same output and gradients on a real NF4 base, dropout on."""
from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model

from qlora_studio.train.lora_fused import fuse_lora_layers
from qlora_studio.train.model import load_quantized_base, prepare_frozen_base


def _model(tiny_dir, fused: bool, dropout: float):
    model, _ = load_quantized_base(str(tiny_dir / "model"), device="cpu")
    prepare_frozen_base(model, gradient_checkpointing=False)
    model.config.use_cache = False
    torch.manual_seed(0)
    pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear",
                                          task_type="CAUSAL_LM"))
    for name, p in pm.named_parameters():  # B starts at zero: give it values so gradients reach A too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    n = fuse_lora_layers(pm) if fused else 0
    return pm.train(), n


def _run(model, ids):
    torch.manual_seed(7)  # the same dropout masks on both sides
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_fused_lora_matches_peft_forward_and_gradients(tiny_dir):
    ids = torch.randint(5, 200, (2, 24), generator=torch.Generator().manual_seed(3))
    ref_model, _ = _model(tiny_dir, False, 0.2)
    ref_loss, ref = _run(ref_model, ids)
    model, n = _model(tiny_dir, True, 0.2)
    layers = model.get_base_model().config.num_hidden_layers
    assert n == 7 * layers  # q, k, v, o, gate, up, down of every layer
    loss, got = _run(model, ids)
    assert torch.allclose(loss, ref_loss, atol=1e-5)
    assert set(got) == set(ref)
    for name in ref:
        assert torch.allclose(got[name], ref[name], atol=1e-5, rtol=1e-4), name


def test_fused_lora_steps_aside_when_adapters_are_disabled(tiny_dir):
    model, _ = _model(tiny_dir, True, 0.0)
    ids = torch.randint(5, 200, (1, 10))
    with torch.no_grad():
        with model.disable_adapter():
            base = model(input_ids=ids, use_cache=False).logits
        adapted = model(input_ids=ids, use_cache=False).logits
    plain, _ = _model(tiny_dir, False, 0.0)
    with torch.no_grad(), plain.disable_adapter():
        assert torch.allclose(base, plain(input_ids=ids, use_cache=False).logits, atol=1e-6)
    assert not torch.allclose(base, adapted)
