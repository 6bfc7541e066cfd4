"""The chunked output-head loss equals the plain full-logits loss, in value and in gradient, on a
real tiny Llama with LoRA on a real bitsandbytes NF4 base."""
from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

from qlora_studio.train.loss import (chunked_head_cross_entropy, downcast_frozen_weights, fused_head_parts,
                                     token_loss_sum)
from qlora_studio.train.model import load_quantized_base


def _lora_model(tiny_dir):
    model, _ = load_quantized_base(str(tiny_dir / "model"), device="cpu")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in peft_model.named_parameters():  # B starts at zero: give it values so gradients reach A too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    return peft_model


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


def test_chunked_loss_equals_full_logits_loss_with_packing(tiny_dir):
    model = _lora_model(tiny_dir)
    parts = fused_head_parts(model)
    assert parts is not None  # the tiny Llama's head is a plain frozen linear map
    g = torch.Generator().manual_seed(1)
    vocab = model.get_base_model().config.vocab_size
    ids = torch.randint(5, vocab, (2, 40), generator=g)
    labels = ids.clone()
    labels[:, :7] = -100  # a prompt
    labels[0, 20:24] = -100
    pos = torch.cat([torch.arange(25), torch.arange(15)]).repeat(2, 1)  # two packed examples a row
    labels[:, 25] = -100  # no loss across the boundary
    out = {}
    for name, p in (("plain", None), ("chunked", parts)):
        model.zero_grad(set_to_none=True)
        loss = token_loss_sum(model, input_ids=ids, labels=labels, position_ids=pos, parts=p)
        loss.backward()
        out[name] = (float(loss), _grads(model))
    assert abs(out["plain"][0] - out["chunked"][0]) < 1e-3 * abs(out["plain"][0])
    assert out["plain"][1].keys() == out["chunked"][1].keys() and len(out["plain"][1]) > 10
    for n, ga in out["plain"][1].items():
        torch.testing.assert_close(out["chunked"][1][n], ga, rtol=1e-3, atol=1e-5)


def test_chunks_of_any_size_give_the_same_loss_and_gradient():
    torch.manual_seed(0)
    hidden = torch.randn(37, 16, requires_grad=True)
    weight = torch.randn(50, 16)
    targets = torch.randint(0, 50, (37,))
    ref = torch.nn.functional.cross_entropy(hidden @ weight.t(), targets, reduction="sum")
    (ref_grad,) = torch.autograd.grad(ref, hidden)
    for chunk in (1, 5, 37, 100):
        loss = chunked_head_cross_entropy(hidden, weight, targets, chunk=chunk)
        (grad,) = torch.autograd.grad(loss * 2.0, hidden)
        torch.testing.assert_close(loss, ref)
        torch.testing.assert_close(grad, 2.0 * ref_grad)


def test_frozen_weights_go_back_to_the_compute_dtype_and_lora_stays():
    lin = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    lin[2].weight.requires_grad_(True)
    for p in list(lin[0].parameters()) + list(lin[1].parameters()):
        p.requires_grad_(False)
    assert downcast_frozen_weights(lin, torch.bfloat16) == 4
    assert lin[0].weight.dtype == torch.bfloat16 and lin[1].weight.dtype == torch.bfloat16
    assert lin[2].weight.dtype == torch.float32
    assert downcast_frozen_weights(lin, torch.float32) == 0
