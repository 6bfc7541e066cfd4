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


def _mock_flash_fwd(q, k, v, cu, longest, causal, scale):
    """Mock of the CUDA-only flash kernel (no such kernel on the CPU): the per-segment reference."""
    from qlora_studio.train.varlen import reference_segments

    with torch.no_grad():
        out = reference_segments(q, k, v, cu.tolist(), causal, scale)
    empty = torch.empty(0)
    return out, empty, empty, empty


def _mock_flash_bwd(grad, q, k, v, out, lse, cu, longest, causal, rng, unused, scale):
    """Mock of the CUDA-only flash backward: autograd through the per-segment reference."""
    from qlora_studio.train.varlen import reference_segments

    leaves = [x.detach().requires_grad_() for x in (q, k, v)]
    with torch.enable_grad():
        reference_segments(*leaves, cu.tolist(), causal, scale).backward(grad)
    return tuple(x.grad for x in leaves)


def test_cu_seqlens_lay_rows_end_to_end() -> None:
    from qlora_studio.train.attention import cu_seqlens_of

    segs = segments_of(torch.tensor([[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]]))
    assert cu_seqlens_of(segs, 5) == ([0, 3, 5, 10], 5)


def test_varlen_layout_matches_per_segment_sdpa_with_mocked_flash_kernel(monkeypatch) -> None:
    """The layout and gradient plumbing around the varlen kernel, with the kernel mocked (it needs CUDA)."""
    from qlora_studio.train import attention, varlen

    monkeypatch.setitem(varlen.KERNELS, "fwd", _mock_flash_fwd)
    monkeypatch.setitem(varlen.KERNELS, "bwd", _mock_flash_bwd)
    module = _model(0).model.layers[0].self_attn
    g = torch.Generator().manual_seed(5)
    lengths = [7, 1, 12, 4]
    pos = torch.cat([torch.arange(n) for n in lengths])[None].repeat(2, 1)
    remember_segments(pos)
    t = sum(lengths)
    base = [torch.randn(2, h, t, 16, generator=g) for h in (4, 2, 2)]
    grads = []
    outs = []
    for path in (attention._varlen, None):
        leaves = [x.clone().requires_grad_() for x in base]
        if path is None:
            out, _ = attention._segments(module, *leaves, pos, 0.0, 0.25, True)
        else:
            out, _ = path(module, *leaves, pos, 0.25, True)
        assert out.shape == (2, t, 4, 16)
        out.backward(torch.ones_like(out) * torch.arange(16.0))
        outs.append(out.detach())
        grads.append([x.grad for x in leaves])
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_varlen_self_check_refuses_a_wrong_kernel_with_a_mock(monkeypatch) -> None:
    """A kernel that disagrees with per-segment SDPA is turned off with a note (mocked: needs CUDA)."""
    from qlora_studio.train import varlen

    def wrong(q, k, v, cu, longest, causal, scale):
        out, *rest = _mock_flash_fwd(q, k, v, cu, longest, causal, scale)
        return (out + 1.0, *rest)

    monkeypatch.setitem(varlen.KERNELS, "fwd", wrong)
    monkeypatch.setitem(varlen.KERNELS, "bwd", _mock_flash_bwd)
    monkeypatch.setattr(varlen, "NOTES", [])
    assert not varlen.self_check(torch.device("cpu"), torch.float32)
    assert "differs" in varlen.NOTES[0]
    monkeypatch.setitem(varlen.KERNELS, "fwd", _mock_flash_fwd)
    assert varlen.self_check(torch.device("cpu"), torch.float32)
