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


def _layer(model, which: str):
    layer = model.get_base_model().model.layers[0]
    return getattr(layer.self_attn, which, None) or getattr(layer.mlp, which)


def _lora_grads(layer, x: torch.Tensor, g: torch.Tensor, call) -> tuple[torch.Tensor, ...]:
    x = x.detach().requires_grad_(True)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    a.grad = b.grad = None
    out = call(x)
    out.backward(g)
    return out.detach(), x.grad, a.grad, b.grad


def _peft_forward(layer):
    return lambda x: type(layer).forward(layer, x)  # peft's own forward, beside the fused one


@torch.no_grad()
def _same(got, ref, what: str, rel: float = 1e-5) -> None:
    for name, u, v in zip(("output", "grad x", "grad A", "grad B"), got, ref):
        assert u.dtype == v.dtype, (what, name)
        err = ((u.float() - v.float()).norm() / v.float().norm()).item()
        assert err < rel, (what, name, err)


def test_fused_lora_equals_peft_given_the_same_mask_and_leaves_the_rng_as_forward_did(tiny_dir):
    model, _ = _model(tiny_dir, True, 0.3)
    for which in ("q_proj", "down_proj"):
        layer = _layer(model, which)
        x = torch.randn(2, 9, layer.in_features, generator=torch.Generator().manual_seed(4))
        g = torch.randn(2, 9, layer.out_features, generator=torch.Generator().manual_seed(5))
        torch.manual_seed(11)
        ref = _lora_grads(layer, x, g, _peft_forward(layer))
        ref_rng = torch.get_rng_state()
        torch.manual_seed(11)
        x_ = x.detach().requires_grad_(True)
        out = layer(x_)
        after_forward = torch.get_rng_state()
        assert torch.equal(after_forward, ref_rng)  # the same draws as peft's dropout: the same mask
        torch.rand(1000)  # later code draws on: backward must regenerate from the forward's state
        before_backward = torch.get_rng_state()
        out.backward(g)
        assert torch.equal(torch.get_rng_state(), before_backward)  # backward borrowed the generator
        a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
        _same((out.detach(), x_.grad, a.grad, b.grad), ref, which)
        layer.eval()  # the mask dropped something: without it the output and grad of A differ
        plain = _lora_grads(layer, x, g, layer)
        layer.train()
        assert not torch.allclose(plain[0], ref[0], atol=1e-4) and not torch.allclose(plain[2], ref[2], atol=1e-4)


def test_fused_lora_in_eval_mode_draws_nothing_and_equals_peft(tiny_dir):
    model, _ = _model(tiny_dir, True, 0.3)
    model.eval()
    layer = _layer(model, "up_proj")
    x = torch.randn(3, 5, layer.in_features)
    g = torch.randn(3, 5, layer.out_features)
    ref = _lora_grads(layer, x, g, _peft_forward(layer))
    before = torch.get_rng_state()
    got = _lora_grads(layer, x, g, layer)
    assert torch.equal(torch.get_rng_state(), before)
    _same(got, ref, "eval")


def _saved_during(fn) -> list[torch.Tensor]:
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    saved.append(out)  # keep the graph (and the saved storages) alive while they are compared
    return saved


def test_fused_lora_keeps_no_copy_of_the_layer_input_for_backward(tiny_dir):
    model, _ = _model(tiny_dir, True, 0.3)
    attn = model.get_base_model().model.layers[0].self_attn
    x = torch.randn(2, 16, attn.q_proj.in_features, requires_grad=True)
    saved = _saved_during(lambda: [attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)])[:-1]
    big = [t for t in saved if t.numel() >= x.numel()]
    assert big, "x itself is saved (for the gradient of A)"
    assert all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in big), \
        [(t.shape, t.dtype) for t in big]  # neither a dropped-out copy of x nor a mask
    r = attn.q_proj.r["default"]
    assert sum(tuple(t.shape) == (32, r) for t in saved) == 3  # each layer's (tokens x r) product


def _saved_bytes(model, ids: torch.Tensor) -> int:
    torch.manual_seed(2)
    saved = _saved_during(lambda: model(input_ids=ids, use_cache=False).logits)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved[:-1]}
    return sum(storages.values())


def test_fused_lora_with_dropout_saves_what_peft_saves_without_dropout(tiny_dir):
    ids = torch.randint(5, 200, (2, 32), generator=torch.Generator().manual_seed(3))
    fused = _saved_bytes(_model(tiny_dir, True, 0.3)[0], ids)
    peft_no_dropout = _saved_bytes(_model(tiny_dir, False, 0.0)[0], ids)
    peft_dropout = _saved_bytes(_model(tiny_dir, False, 0.3)[0], ids)
    assert fused == peft_no_dropout < peft_dropout


def test_fused_lora_under_autocast_runs_the_adapter_in_the_compute_dtype(tiny_dir):
    model, _ = _model(tiny_dir, True, 0.3)
    layer = _layer(model, "o_proj")
    x = torch.randn(2, 7, layer.in_features).to(torch.bfloat16)
    g = torch.randn(2, 7, layer.out_features).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(5)
        ref = _lora_grads(layer, x, g, _peft_forward(layer))
        torch.manual_seed(5)
        got = _lora_grads(layer, x, g, layer)
    assert got[0].dtype == got[1].dtype == torch.bfloat16
    assert got[2].dtype == got[3].dtype == torch.float32  # fp32 adapter weights, fp32 gradients
    _same(got, ref, "autocast", rel=1e-2)  # bf16 roundings in another order


def test_fused_lora_under_offloaded_checkpointing_matches_plain_peft(tiny_dir, monkeypatch):
    from qlora_studio.train import offload

    offloaded = []
    real = offload._to_host
    monkeypatch.setattr(offload, "_to_host", lambda x: offloaded.append(x.shape) or real(x))

    def build(fused: bool, checkpointed: bool):
        model, _ = load_quantized_base(str(tiny_dir / "model"), device="cpu")
        prepare_frozen_base(model, gradient_checkpointing=False)
        model.config.use_cache = False
        if checkpointed:
            assert offload.offload_checkpointing(model) == model.config.num_hidden_layers
        torch.manual_seed(0)
        pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.3, target_modules="all-linear",
                                              task_type="CAUSAL_LM"))
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
        if fused:
            assert fuse_lora_layers(pm) > 0
        return pm.train()

    ids = torch.randint(5, 200, (2, 24), generator=torch.Generator().manual_seed(3))
    ref_loss, ref = _run(build(False, False), ids)
    loss, got = _run(build(True, True), ids)
    assert len(offloaded) == 4  # every decoder layer was replayed from its offloaded input
    assert torch.allclose(loss, ref_loss, atol=1e-5)
    assert set(got) == set(ref)
    for name in ref:
        assert torch.allclose(got[name], ref[name], atol=1e-5, rtol=1e-4), name
