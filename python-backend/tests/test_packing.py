"""Packing: rows respect max_seq_len, positions restart, and attention never crosses examples."""
from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
import torch

from qlora_studio.data import IGNORE_INDEX, pack_examples, packed_attention_mask


@dataclass
class Ex:
    input_ids: list[int]
    labels: list[int]


def _examples(n: int, seed: int = 0, vocab: int = 97, max_len: int = 40) -> list[Ex]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [rng.randrange(1, vocab) for _ in range(rng.randrange(3, max_len))]
        out.append(Ex(ids, [t if rng.random() < 0.6 else IGNORE_INDEX for t in ids]))
    return out


def test_rows_fit_and_every_example_appears_once_with_restarting_positions():
    exs = _examples(60)
    packed = pack_examples(exs, 64, seed=3)
    seen = []
    for row in packed:
        assert len(row.input_ids) == len(row.labels) == len(row.position_ids) == sum(row.seq_lens) <= 64
        start = 0
        for n in row.seq_lens:
            assert row.position_ids[start:start + n] == list(range(n))
            assert row.labels[start] == IGNORE_INDEX
            seen.append(tuple(row.input_ids[start:start + n]))
            start += n
    assert sorted(seen) == sorted(tuple(e.input_ids) for e in exs)
    # Best-fit decreasing fills rows well: no more rows than a couple above the lower bound.
    assert len(packed) <= -(-sum(len(e.input_ids) for e in exs) // 64) + 2


def test_labels_inside_an_example_are_kept_except_the_first():
    exs = [Ex([5, 6, 7], [5, 6, 7]), Ex([8, 9], [IGNORE_INDEX, 9])]
    (row,) = pack_examples(exs, 16, seed=0)
    assert row.seq_lens == [3, 2]  # decreasing length order inside a row
    assert row.input_ids == [5, 6, 7, 8, 9]
    assert row.labels == [IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]
    assert row.position_ids == [0, 1, 2, 0, 1]


def test_packing_is_deterministic_under_the_seed():
    exs = _examples(30)
    a = pack_examples(exs, 64, seed=7)
    b = pack_examples(exs, 64, seed=7)
    c = pack_examples(exs, 64, seed=8)
    assert a == b
    assert [r.input_ids for r in a] != [r.input_ids for r in c]


def test_too_long_example_is_rejected():
    with pytest.raises(ValueError, match="max_seq_len"):
        pack_examples([Ex(list(range(1, 20)), list(range(1, 20)))], 16, seed=0)


def test_packed_attention_mask_is_block_diagonal_causal():
    m = packed_attention_mask([2, 3], torch.float32)[0, 0]
    allowed = (m == 0).int().tolist()
    assert allowed == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]]


def _tiny_llama(attn: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_row_logits_equal_each_example_alone(attn):
    torch.set_num_threads(1)
    model = _tiny_llama(attn)
    exs = _examples(6, seed=1, max_len=20)
    (row,) = pack_examples(exs, 256, seed=0)
    ids = torch.tensor([row.input_ids])
    pos = torch.tensor([row.position_ids])
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
        masked = model(input_ids=ids, position_ids=pos, use_cache=False,
                       attention_mask=packed_attention_mask(row.seq_lens, torch.float32)).logits[0]
        naive = model(input_ids=ids, use_cache=False).logits[0]
        start = 0
        crossed = False
        for n in row.seq_lens:
            alone = model(input_ids=ids[:, start:start + n], use_cache=False).logits[0]
            torch.testing.assert_close(packed[start:start + n], alone, atol=1e-5, rtol=0)
            torch.testing.assert_close(masked[start:start + n], alone, atol=1e-5, rtol=0)
            crossed |= not torch.allclose(naive[start:start + n], alone, atol=1e-5)
            start += n
    assert crossed, "without restarting positions the examples must see each other"
