"""Micro-batches for the training loop, as a deterministic function of (seed, epoch).

A resumed run rebuilds the batches of the epoch it stopped in and skips to the saved index, so
it sees exactly the data the uninterrupted run would have seen.

Packed micro-batches are padding-free: the micro_batch_size packed rows are laid end to end in
one row, position_ids restart at 0 for every example, and no attention mask is passed. With no
mask and no cache, transformers derives a block-diagonal causal mask from the position_ids, so
attention never crosses an example (the data package's tests pin that down).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from ..data.masking import IGNORE_INDEX


@dataclass
class MicroBatch:
    """Tensors for one forward pass plus the counts the loss and metrics need."""

    input_ids: Any
    labels: Any
    position_ids: Any | None
    attention_mask: Any | None
    n_tokens: int          # non-padding tokens
    n_trained: int         # labels that carry loss (after the one-token shift)


def _count_trained(labels: Sequence[int]) -> int:
    # The first label is never predicted (nothing precedes it), so it is not counted.
    return sum(1 for x in labels[1:] if x != IGNORE_INDEX)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's order: distinct per epoch, identical across a resume."""
    return seed * 1_000_003 + epoch


def packed_batches(examples: Sequence[Any], max_seq_len: int, micro_batch_size: int, seed: int) -> list[MicroBatch]:
    """Pack examples (qlora_studio.data.pack_examples) and join micro_batch_size rows per batch."""
    import torch

    from ..data import pack_examples

    rows = pack_examples(list(examples), max_seq_len, seed)
    out = []
    for i in range(0, len(rows), micro_batch_size):
        group = rows[i:i + micro_batch_size]
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for r in group:
            ids += r.input_ids
            labels += r.labels
            pos += r.position_ids
        n_trained = sum(_count_trained(r.labels) for r in group)
        out.append(MicroBatch(torch.tensor([ids]), torch.tensor([labels]), torch.tensor([pos]), None,
                              len(ids), n_trained))
    return out


def padded_batches(examples: Sequence[Any], micro_batch_size: int, pad_id: int, seed: int) -> list[MicroBatch]:
    """Shuffle examples by seed and pad each micro-batch to its longest row (labels -100 on padding)."""
    import torch

    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    out = []
    for i in range(0, len(order), micro_batch_size):
        group = [examples[j] for j in order[i:i + micro_batch_size]]
        width = max(len(e.input_ids) for e in group)
        ids, labels, mask = [], [], []
        for e in group:
            pad = width - len(e.input_ids)
            ids.append(list(e.input_ids) + [pad_id] * pad)
            labels.append(list(e.labels) + [IGNORE_INDEX] * pad)
            mask.append([1] * len(e.input_ids) + [0] * pad)
        n_tokens = sum(len(e.input_ids) for e in group)
        n_trained = sum(_count_trained(r) for r in labels)
        out.append(MicroBatch(torch.tensor(ids), torch.tensor(labels), None, torch.tensor(mask),
                              n_tokens, n_trained))
    return out


def epoch_batches(examples: Sequence[Any], *, packing: bool, max_seq_len: int, micro_batch_size: int,
                  pad_id: int, seed: int, epoch: int) -> list[MicroBatch]:
    """All micro-batches of one epoch, in the order the loop consumes them."""
    s = epoch_seed(seed, epoch)
    if packing:
        return packed_batches(examples, max_seq_len, micro_batch_size, s)
    return padded_batches(examples, micro_batch_size, pad_id, s)


def join_micro_batches(group: Sequence[MicroBatch]) -> MicroBatch:
    """Packed micro-batches laid end to end as one: the same rows, tokens and trained labels.

    Packed rows already sit end to end with positions restarting at every example and the first
    label of every example ignored, so a joined batch is what a larger micro_batch_size packs.
    Padded batches (with an attention mask) cannot be joined this way: ValueError.
    """
    import torch

    if len(group) == 1:
        return group[0]
    if any(mb.attention_mask is not None or mb.position_ids is None for mb in group):
        raise ValueError("only packed micro-batches can be joined")
    return MicroBatch(torch.cat([mb.input_ids for mb in group], dim=1), torch.cat([mb.labels for mb in group], dim=1),
                      torch.cat([mb.position_ids for mb in group], dim=1), None,
                      sum(mb.n_tokens for mb in group), sum(mb.n_trained for mb in group))
