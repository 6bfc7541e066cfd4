"""Segment attention for packed rows: the same function as running each example on its own."""
from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from qlora_studio.train.attention import remember_segments, segments_of, use_segment_attention


def _model(seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=97, attn_implementation="sdpa")
    return LlamaForCausalLM(cfg)


def test_segments_follow_position_restarts() -> None:
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1, 2, 3]])
    assert segments_of(pos) == [[(0, 3), (3, 5), (5, 6), (6, 10)]]


def test_packed_row_matches_examples_run_apart_with_gradients() -> None:
    lengths = [11, 3, 17, 1, 8]
    ids = torch.randint(0, 97, (1, sum(lengths)), generator=torch.Generator().manual_seed(3))
    pos = torch.cat([torch.arange(n) for n in lengths])[None]
    bounds = segments_of(pos)[0]

    apart = _model(0).train()
    apart.config.use_cache = False
    ref = torch.cat([apart(input_ids=ids[:, s:e], use_cache=False).logits for s, e in bounds], dim=1)
    ref.float().pow(2).mean().backward()

    packed = _model(0).train()
    assert use_segment_attention(packed)
    assert packed.config._attn_implementation == "qlora_segments"
    remember_segments(pos)
    got = packed(input_ids=ids, position_ids=pos, use_cache=False).logits
    got.float().pow(2).mean().backward()

    assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
    for (name, a), (_, b) in zip(packed.named_parameters(), apart.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name


def test_padded_batches_keep_their_mask() -> None:
    m = _model(1).eval()
    ids = torch.randint(0, 97, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    ref = m(input_ids=ids, attention_mask=mask, use_cache=False).logits
    assert use_segment_attention(m)
    got = m(input_ids=ids, attention_mask=mask, use_cache=False).logits
    assert torch.allclose(got, ref, atol=1e-5)
    short = m(input_ids=ids[1:, :6], use_cache=False).logits
    assert torch.allclose(got[1, :6], short[0], atol=1e-5)
