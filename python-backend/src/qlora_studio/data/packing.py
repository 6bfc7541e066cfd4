"""Padding-free packing: several examples per sequence, no attention or loss across them.

Each packed row carries ``position_ids`` that restart at 0 at every example. transformers (5.x)
turns restarting position ids into a block-diagonal causal mask by itself when the forward gets
``position_ids``, no ``attention_mask`` and no KV cache (pass ``use_cache=False`` when training);
``packed_attention_mask`` builds the same mask explicitly for code paths that need one. The first
label of every example is -100, so the last token of one example never learns to predict the first
token of the next.
"""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Any, Sequence

from .masking import IGNORE_INDEX


@dataclass(frozen=True)
class PackedSeq:
    """One packed row: concatenated examples, restarting positions and each example's length."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    seq_lens: list[int]


def _bins(lengths: list[int], max_seq_len: int, order: list[int]) -> list[list[int]]:
    """Best-fit decreasing: each example goes to the fullest bin it still fits in."""
    by_len = sorted(order, key=lambda i: -lengths[i])  # stable: ties keep the seeded order
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted
    for i in by_len:
        need = lengths[i]
        at = bisect.bisect_left(free, (need, -1))
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = max_seq_len, len(bins)
            bins.append([])
        bins[b].append(i)
        bisect.insort(free, (room - need, b))
    return bins


def pack_examples(examples: Sequence[Any], max_seq_len: int, seed: int) -> list[PackedSeq]:
    """Pack examples (objects with ``input_ids`` and ``labels``) into rows of <= max_seq_len tokens.

    Deterministic for a given ``seed``: the seed shuffles the input before best-fit-decreasing
    binning and shuffles the order of the resulting rows.
    """
    lengths = [len(e.input_ids) for e in examples]
    for index, n in enumerate(lengths):
        if n > max_seq_len:
            raise ValueError(f"example {index} has {n} tokens, more than max_seq_len={max_seq_len}; "
                             "truncate examples before packing")
        if n == 0:
            raise ValueError(f"example {index} is empty")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    bins = _bins(lengths, max_seq_len, order)
    rng.shuffle(bins)
    packed = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in members:
            ex = examples[i]
            ids += list(ex.input_ids)
            labels += [IGNORE_INDEX] + list(ex.labels[1:])
            positions += list(range(len(ex.input_ids)))
        packed.append(PackedSeq(ids, labels, positions, [lengths[i] for i in members]))
    return packed


def packed_attention_mask(seq_lens: Sequence[int], dtype: Any) -> Any:
    """A 4D additive mask ``[1, 1, L, L]``: causal inside each example, blocked across examples.

    0 where attention is allowed, the dtype's most negative value elsewhere.
    """
    import torch

    total = int(sum(seq_lens))
    ids = torch.repeat_interleave(torch.arange(len(seq_lens)), torch.tensor(list(seq_lens)))
    same = ids[:, None] == ids[None, :]
    causal = torch.ones(total, total, dtype=torch.bool).tril()
    mask = torch.zeros(total, total, dtype=dtype)
    mask.masked_fill_(~(same & causal), torch.finfo(dtype).min)
    return mask[None, None]


def packing_stats(packed: Sequence[PackedSeq], max_seq_len: int) -> dict[str, Any]:
    """How well examples pack: rows, tokens and the share of the row budget they fill."""
    tokens = sum(len(p.input_ids) for p in packed)
    return {
        "rows": len(packed),
        "tokens": tokens,
        "examples": sum(len(p.seq_lens) for p in packed),
        "fill": (tokens / (len(packed) * max_seq_len)) if packed else 0.0,
    }
