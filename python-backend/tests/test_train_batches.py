"""Batching and schedules of the training loop (no model needed)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from qlora_studio.train.batches import IGNORE_INDEX, epoch_batches
from qlora_studio.train.schedule import lr_lambda, warmup_steps_for


@dataclass
class Ex:
    input_ids: list[int]
    labels: list[int]


def _examples(n: int = 23) -> list[Ex]:
    out = []
    for i in range(n):
        length = 5 + i % 7
        ids = [100 + i] * length
        labels = [IGNORE_INDEX] * (length - 2) + [7, 8]  # last two tokens trained
        out.append(Ex(ids, labels))
    return out


def test_packed_batches_are_flat_and_never_cross_examples():
    exs = _examples()
    batches = epoch_batches(exs, packing=True, max_seq_len=32, micro_batch_size=2, pad_id=0, seed=3, epoch=0)
    assert sum(b.n_tokens for b in batches) == sum(len(e.input_ids) for e in exs)  # no padding at all
    assert sum(b.n_trained for b in batches) == 2 * len(exs)
    for b in batches:
        assert b.attention_mask is None and b.input_ids.shape[0] == 1
        ids, labels, pos = b.input_ids[0].tolist(), b.labels[0].tolist(), b.position_ids[0].tolist()
        starts = [i for i, p in enumerate(pos) if p == 0]
        for s in starts:
            assert labels[s] == IGNORE_INDEX  # the first token of an example is never a target
        for s, e in zip(starts, starts[1:] + [len(ids)]):
            assert len(set(ids[s:e])) == 1 and pos[s:e] == list(range(e - s))


def test_padded_batches_mask_padding():
    exs = _examples(5)
    (b, *rest) = epoch_batches(exs, packing=False, max_seq_len=32, micro_batch_size=5, pad_id=0, seed=1, epoch=0)
    assert not rest and b.input_ids.shape == (5, 9) and b.position_ids is None
    mask, labels = b.attention_mask, b.labels
    assert (labels[mask == 0] == IGNORE_INDEX).all() and (b.input_ids[mask == 0] == 0).all()
    assert b.n_tokens == int(mask.sum()) and b.n_trained == 10


def test_data_order_depends_on_seed_and_epoch_only():
    exs = _examples()
    def order(seed, epoch):
        return [b.input_ids[0].tolist() for b in epoch_batches(exs, packing=True, max_seq_len=32, micro_batch_size=1,
                                                                pad_id=0, seed=seed, epoch=epoch)]
    assert order(5, 0) == order(5, 0)
    assert order(5, 0) != order(5, 1) and order(5, 0) != order(6, 0)


def test_schedules():
    total, warm = 100, warmup_steps_for(100, None, 0.05)
    assert warm == 5 and warmup_steps_for(10, 50, 0.0) == 9
    cos, lin, const = (lr_lambda(k, total, warm) for k in ("cosine", "linear", "constant"))
    assert [round(cos(s), 3) for s in range(5)] == [round((s + 1) / 6, 3) for s in range(5)]
    assert cos(warm) == 1.0 and lin(warm) == 1.0 and const(99) == 1.0
    mid = warm + (total - warm) // 2
    assert math.isclose(cos(total), 0.0, abs_tol=1e-9) and abs(cos(mid) - 0.5) < 0.02
    assert math.isclose(lin(total), 0.0, abs_tol=1e-9) and abs(lin(mid) - 0.5) < 0.02
