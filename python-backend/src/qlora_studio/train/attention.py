"""Attention for packed, padding-free rows without a dense block-diagonal mask.

A packed micro-batch is one row of several examples whose position_ids restart at 0. The stock
SDPA path turns that into a (tokens x tokens) boolean mask, which rules out the flash kernel and
computes every cross-example block only to mask it away. Here each example (segment) gets its
own causal SDPA call on its slice of q, k, v: the flash kernel where the GPU has it, no mask
tensor, and work proportional to the sum of squared segment lengths instead of the squared row.

On CUDA the whole micro-batch goes to the flash kernel's variable-length entry point in one call
per layer (`varlen_flash`: cumulative segment offsets instead of one launch per example, grouped
query heads passed as they are); one SDPA call per segment is the path where that kernel is
missing, and the CPU's.

Segments come from the position_ids the decoder passes down to every attention call. The engine
registers the segments of each micro-batch's position_ids once (`remember_segments`), so the
attention calls of every layer, and of their recomputation under gradient checkpointing, find
them without a device-to-host copy. Batches with a padding mask take the stock SDPA path.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F

NAME = "qlora_segments"
_CACHE: list[tuple[Any, list[list[tuple[int, int]]], dict[Any, Any]]] = []


def segments_of(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the (start, end) of each run of positions that counts up by one from where it began."""
    rows = position_ids.detach().to("cpu").tolist()
    out = []
    for row in rows:
        starts = [0] + [i for i in range(1, len(row)) if row[i] != row[i - 1] + 1]
        out.append(list(zip(starts, starts[1:] + [len(row)])))
    return out


def remember_segments(position_ids: torch.Tensor, segments: list[list[tuple[int, int]]] | None = None) -> None:
    """Tell the attention the segments of this position_ids tensor (computed here when not given)."""
    segs = segments if segments is not None else segments_of(position_ids)
    _CACHE.append((weakref.ref(position_ids), segs, {}))
    del _CACHE[:-4]


STATS = {"hits": 0, "misses": 0, "varlen": 0, "per_segment": 0}


def _entry(position_ids: torch.Tensor) -> tuple[Any, list[list[tuple[int, int]]], dict[Any, Any]]:
    for entry in reversed(_CACHE):
        if entry[0]() is position_ids:
            STATS["hits"] += 1
            return entry
    STATS["misses"] += 1  # a device-to-host copy: the caller passed another tensor than it registered
    remember_segments(position_ids)
    return _CACHE[-1]


def _lookup(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    return _entry(position_ids)[1]


def cu_seqlens_of(segments: list[list[tuple[int, int]]], row_len: int) -> tuple[list[int], int]:
    """Cumulative segment starts over the rows laid end to end (row b starts at b * row_len), and the longest."""
    cu, longest = [0], 1
    for b, segs in enumerate(segments):
        for s, e in segs:
            cu.append(b * row_len + e)
            longest = max(longest, e - s)
    return cu, longest


def _cu_seqlens(position_ids: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, int]:
    """The int32 offsets on `device` for this position_ids (made once per micro-batch, from the host copy)."""
    _, segs, extra = _entry(position_ids)
    if device not in extra:
        cu, longest = cu_seqlens_of(segs, position_ids.shape[-1])
        extra[device] = (torch.tensor(cu, dtype=torch.int32).to(device, non_blocking=True), longest)
    return extra[device]


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    if n_rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


def segment_sdpa(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                 is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers attention interface: q (B, H, T, D), k/v (B, Hkv, T, D) -> (B, T, H, D)."""
    position_ids = kwargs.get("position_ids")
    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if query.is_cuda:
        # cuDNN's SDPA builds an execution plan per new shape (milliseconds of CPU each), and every
        # segment length is a new shape: keep the calls on the flash / memory-efficient kernels.
        from torch.nn.attention import SDPBackend, sdpa_kernel

        if dropout == 0.0 or not module.training:
            from .varlen import varlen_usable

            if varlen_usable(query, key):
                return _varlen(module, query, key, value, position_ids, scaling, is_causal)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            return _segments(module, query, key, value, position_ids, dropout, scaling, is_causal)
    return _segments(module, query, key, value, position_ids, dropout, scaling, is_causal)


def _varlen(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, position_ids: torch.Tensor,
            scaling: float | None, is_causal: bool | None) -> tuple[torch.Tensor, None]:
    """All rows and segments in one variable-length flash call: (B, H, T, D) in, (B, T, H, D) out."""
    from .varlen import varlen_flash

    STATS["varlen"] += 1
    causal = is_causal if is_causal is not None else bool(getattr(module, "is_causal", True))
    b, h, t, d = query.shape
    cu, longest = _cu_seqlens(position_ids, query.device)

    def tokens_first(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B*T, H, D)
        return x.transpose(1, 2).reshape(b * t, x.shape[1], d)

    out = varlen_flash(tokens_first(query), tokens_first(key), tokens_first(value), cu, longest, causal,
                       scaling if scaling is not None else d ** -0.5)
    return out.view(b, t, h, d), None


def _segments(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, position_ids: torch.Tensor,
              dropout: float, scaling: float | None, is_causal: bool | None) -> tuple[torch.Tensor, None]:
    causal = is_causal if is_causal is not None else bool(getattr(module, "is_causal", True))
    n_rep = query.shape[1] // key.shape[1]
    key, value = _repeat_kv(key, n_rep), _repeat_kv(value, n_rep)
    p = dropout if module.training else 0.0
    STATS["per_segment"] += 1
    rows = []
    for b, segs in enumerate(_lookup(position_ids)):
        if len(segs) == 1:
            rows.append(F.scaled_dot_product_attention(query[b:b + 1], key[b:b + 1], value[b:b + 1], dropout_p=p,
                                                       is_causal=causal, scale=scaling))
            continue
        parts = [F.scaled_dot_product_attention(query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e],
                                                dropout_p=p, is_causal=causal, scale=scaling) for s, e in segs]
        rows.append(torch.cat(parts, dim=2))
    out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def _segment_mask(*args: Any, **kwargs: Any) -> Any:
    """No mask for padding-free rows (the segments replace it); the stock SDPA mask otherwise."""
    if kwargs.get("attention_mask") is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, **kwargs)


def use_segment_attention(model: Any) -> bool:
    """Switch a transformers model (and its sub-configs) to segment attention; False when it cannot."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:
        return False
    AttentionInterface.register(NAME, segment_sdpa)
    AttentionMaskInterface.register(NAME, _segment_mask)
    current = getattr(model.config, "_attn_implementation", None)
    if current not in ("sdpa", NAME):
        return False  # eager, flash or a model-specific kernel: leave the model's choice alone
    setter = getattr(model, "set_attn_implementation", None)
    try:
        if setter is not None:
            setter(NAME)
        else:
            model.config._attn_implementation = NAME
    except (ValueError, ImportError):
        return False
    return getattr(model.config, "_attn_implementation", None) == NAME
