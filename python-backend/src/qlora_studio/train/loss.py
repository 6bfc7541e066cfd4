"""The training loss, computed only where it is needed and a slice of the vocabulary at a time.

A plain `model(...).logits` holds logits for every position and the whole vocabulary (8,192
packed tokens x 128,256 entries is 2 GiB in bf16, plus 4 GiB for the fp32 copy the loss takes),
although only the trained positions (assistant tokens under the masking rule) carry loss. Here
the decoder's hidden states are taken first, the trained positions are selected, and the frozen
output head and the cross-entropy run over them in chunks whose fp32 logits stay small. The
gradient with respect to the hidden states is formed chunk by chunk in the forward pass (the
head is frozen, so that is the only gradient needed) and handed back in backward, so no chunk's
logits outlive it.

Models whose head is not a plain frozen linear map, or that transform logits after the head
(soft-capping, scaling), take the plain path: `model(...).logits` and cross-entropy.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..data.masking import IGNORE_INDEX

# fp32 logits held at once by one chunk: 2**25 elements = 128 MiB (about 261 rows of a 128k vocabulary).
_CHUNK_ELEMENTS = 1 << 25
# Config attributes of models that transform logits after the head.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def fused_head_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder, head weight) when the chunked loss applies to this (peft-wrapped) model, else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_decoder = getattr(base, "get_decoder", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if get_decoder is None or head is None or type(head) is not torch.nn.Linear:
        return None
    if head.bias is not None or head.weight.requires_grad:
        return None
    cfg = getattr(base, "config", None)
    for name in _LOGIT_TRANSFORMS:
        value = getattr(cfg, name, None)
        if value not in (None, 1, 1.0):
            return None
    decoder = get_decoder()
    return (decoder, head.weight) if decoder is not None else None


def token_loss_sum(model: Any, *, input_ids: Any, labels: Any, position_ids: Any = None,
                   attention_mask: Any = None, parts: tuple[Any, Any] | None = None) -> Any:
    """Summed cross-entropy over the trained tokens (labels shifted by one, -100 ignored).

    `parts` is `fused_head_parts(model)` computed once by the caller; None means the plain path.
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": False}
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if parts is None:
        logits = model(**kwargs).logits
        return F.cross_entropy(logits[:, :-1, :].float().reshape(-1, logits.shape[-1]),
                               labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    decoder, weight = parts
    hidden = decoder(**kwargs).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    return chunked_head_cross_entropy(hidden[:, :-1, :][keep], weight, targets[keep])


def chunked_head_cross_entropy(hidden: Any, weight: Any, targets: Any, chunk: int | None = None) -> Any:
    """sum_i CE(hidden[i] @ weight.T, targets[i]) without holding all logits; weight is frozen."""
    vocab = int(weight.shape[0])
    chunk = chunk or max(1, _CHUNK_ELEMENTS // max(1, vocab))
    return _ChunkedHeadCE.apply(hidden, weight, targets, chunk)


class _ChunkedHeadCE(torch.autograd.Function):
    """Forward: summed CE over chunks, and the gradient for `hidden` formed on the way."""

    @staticmethod
    def forward(ctx: Any, hidden: Any, weight: Any, targets: Any, chunk: int) -> Any:
        need_grad = bool(ctx.needs_input_grad[0])
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad = torch.empty_like(hidden) if need_grad else None
        w = weight.to(hidden.dtype) if weight.dtype != hidden.dtype else weight
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start:start + chunk]
            y = targets[start:start + chunk]
            logits = (h @ w.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, y[:, None]).squeeze(1)).sum()
            if grad is not None:
                # d CE / d logits = softmax - onehot, formed in place over this chunk's logits.
                probs = logits.sub_(lse[:, None]).exp_()
                probs[torch.arange(probs.shape[0], device=probs.device), y] -= 1.0
                grad[start:start + chunk] = (probs.to(w.dtype) @ w).to(hidden.dtype)
        ctx.save_for_backward(grad if grad is not None else total.new_empty(0))
        return total

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> Any:
        (grad,) = ctx.saved_tensors
        return grad * grad_out.to(grad.dtype), None, None, None


def downcast_frozen_weights(model: Any, dtype: Any) -> int:
    """Cast frozen floating weights that are fp32 (norms, embeddings, head) to the compute dtype.

    peft's `prepare_model_for_kbit_training` upcasts every non-quantized weight to fp32 (the
    engine prepares the base itself and no longer calls it; a model may still load some). With
    bf16/fp16 compute that turns the residual stream, attention and the output head into fp32
    work: RMSNorm multiplies by an fp32 weight and hands fp32 on. Trainable (LoRA) weights are left
    as they are. Returns the number of tensors cast.
    """
    if dtype == torch.float32:
        return 0
    n = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype == torch.float32:
            p.data = p.data.to(dtype)
            n += 1
    return n
