"""Offloaded gradient checkpointing: the same loss and gradients as no checkpointing, dropout included."""
from __future__ import annotations

import pytest
import torch
from conftest import lora_loss_and_grads as _loss_and_grads
from conftest import small_lora_llama as _lora_model
from transformers import LlamaConfig, LlamaForCausalLM

from qlora_studio.train.offload import decoder_layers, offload_checkpointing


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_offloaded_checkpointing_matches_no_checkpointing(dropout: float, monkeypatch) -> None:
    from qlora_studio.train import offload

    saved = []
    real = offload._to_host
    monkeypatch.setattr(offload, "_to_host", lambda x: saved.append(x.shape) or real(x))
    ids = torch.randint(0, 97, (2, 19), generator=torch.Generator().manual_seed(1))
    ref_loss, ref = _loss_and_grads(_lora_model(False, dropout), ids)
    assert saved == []
    loss, got = _loss_and_grads(_lora_model(True, dropout), ids)
    assert saved == [torch.Size([2, 19, 64])] * 3  # one saved input per decoder layer
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    assert set(got) == set(ref) and len(got) == 18
    for name in ref:
        assert torch.allclose(got[name], ref[name], atol=1e-6, rtol=1e-5), name


def test_offloaded_layers_run_plainly_without_gradients() -> None:
    model = _lora_model(True, 0.1)
    ids = torch.randint(0, 97, (1, 9))
    with torch.no_grad():
        train_out = model(input_ids=ids, use_cache=False).logits
    model.eval()
    assert torch.allclose(model(input_ids=ids, use_cache=False).logits, model(input_ids=ids, use_cache=False).logits)
    assert train_out.shape == (1, 9, 97)
    assert all(getattr(m, "_qlora_offloaded", False) for m in decoder_layers(model.get_base_model()))


def test_offload_refuses_layers_already_checkpointed() -> None:
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, vocab_size=31)
    model = LlamaForCausalLM(cfg)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    with pytest.raises(ValueError, match="checkpointing off"):
        offload_checkpointing(model)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_tiled_mlp_under_offloaded_checkpointing_matches_tiled_forward(dropout: float) -> None:
    """Tiles of 4 tokens over 19 (5 tiles): the same loss and gradients as the tiled model without checkpointing."""
    from qlora_studio.train.offload import tile_mlps

    ids = torch.randint(0, 97, (1, 19), generator=torch.Generator().manual_seed(2))
    plain = _lora_model(False, dropout)
    assert tile_mlps(plain.get_base_model(), tile=4) == 3
    ref_loss, ref = _loss_and_grads(plain, ids)
    tiled = _lora_model(True, dropout)
    assert tile_mlps(tiled.get_base_model(), tile=4) == 3
    loss, got = _loss_and_grads(tiled, ids)
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    for name in ref:
        assert torch.allclose(got[name], ref[name], atol=1e-6, rtol=1e-5), name
    if dropout == 0.0:  # without dropout, tiles are the same function as the whole MLP
        untiled_loss, untiled = _loss_and_grads(_lora_model(False, 0.0), ids)
        assert torch.allclose(loss, untiled_loss, atol=1e-5)
        for name in ref:
            assert torch.allclose(got[name], untiled[name], atol=1e-5, rtol=1e-4), name


def test_backward_prefetches_the_input_of_the_layer_before_with_a_mock(monkeypatch) -> None:
    """Order bookkeeping of the GPU prefetch (the copy itself needs CUDA: `prefetch` is mocked)."""
    import weakref

    from qlora_studio.train import offload

    asked = []
    monkeypatch.setattr(offload._Saved, "prefetch", lambda self, device: asked.append(self))
    saved = [offload._Saved(torch.zeros(1), None) for _ in range(4)]
    monkeypatch.setattr(offload, "_ORDER", [weakref.ref(s) for s in saved])
    dev = torch.device("cpu")
    offload._prefetch_before(saved[3], dev)  # backward of the last layer: the third comes next
    offload._prefetch_before(saved[2], dev)
    offload._prefetch_before(saved[0], dev)  # a layer with none before it asks for nothing
    assert asked == [saved[2], saved[1]]
    assert [r() for r in offload._ORDER] == [saved[1]]
