"""A leaner LoRA branch for peft's 4-bit layers: one matmul into the base output, no input copies kept.

peft computes `result = base(x).clone(); result = result + lora_B(lora_A(dropout(x))) * scaling`:
besides the two small adapter matmuls that is a copy, a scale and an add over the layer's whole
output (as wide as the MLP for gate and up), three extra passes over the largest tensors of the
step and a handful of launches per layer. Here the second adapter matmul takes the base output
as its accumulator: `addmm(base(x), dropout(x) @ A^T, B^T, alpha=scaling)`, the same function in
one kernel.

Memory: with dropout on, autograd would keep for backward, per LoRA layer, the dropped-out input
(as large as x: q, k and v each their own copy although they share x; down_proj one as wide as the
MLP) and the dropout's mask. `LoraBranch` keeps only x itself (one tensor that q, k and v, or gate
and up, share: what dropout 0 keeps anyway), the (tokens x r) product `dropout(x) @ A^T`, A and B,
and the generator state from just before the dropout. Backward sets that state again for one
moment, draws the same mask with the same op on the same tensor, and puts the state back, so the
random numbers seen by later code do not change. Reading and setting a generator's state stays on
the host (no device sync). Checkpoint replays (offload.py, torch's checkpoint) restore the RNG
before replaying a layer, so the replay draws the masks of the first forward.

It applies where that is the same computation: one active plain LoRA adapter (no DoRA or other
variant, not merged, adapters enabled, no per-call adapter names), a plain dropout (or none), and
the adapter math in the dtype of the input and the output: the autocast dtype when autocast is on
(the adapter weights stay fp32 and get fp32 gradients, as with peft under autocast), else the
adapter's own dtype. Anything else takes peft's forward unchanged.
"""
from __future__ import annotations

from typing import Any

import torch


def _rng_state(device: torch.device) -> torch.Tensor:
    """The state of the default generator that dropout on `device` draws from (a host tensor)."""
    if device.type == "cpu":
        return torch.get_rng_state()
    return torch.get_device_module(device.type).get_rng_state(device)


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cpu":
        torch.set_rng_state(state)
    else:
        torch.get_device_module(device.type).set_rng_state(state, device)


def _has_rng(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    mod = getattr(torch, device.type, None)
    return hasattr(mod, "get_rng_state") and hasattr(mod, "set_rng_state")


def _redraw(x: torch.Tensor, p: float, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """dropout(x) and its mask, drawn again from `state`; the generator is left as it was."""
    now = _rng_state(x.device)
    _set_rng_state(x.device, state)
    try:
        return torch.native_dropout(x, p, True)
    finally:
        _set_rng_state(x.device, now)


class LoraBranch(torch.autograd.Function):
    """forward(x, base_out, A, B, p, scaling, dtype) = base_out + scaling * (dropout_p(x) @ A^T) @ B^T.

    `x` and `base_out` must already be in `dtype` (the adapter math's dtype); A and B are cast to
    it for the matmuls and get their gradients in their own dtype. p = 0 means no dropout (no mask,
    no RNG use). The dropout is torch's own (`dropout` is `native_dropout` wherever it is fused, and
    draws the same numbers on the CPU), so a seed gives peft's masks.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, base_out: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                p: float, scaling: float, dtype: torch.dtype) -> torch.Tensor:
        state = None
        if p > 0:
            state = _rng_state(x.device)
            xd = torch.native_dropout(x, p, True)[0]
        else:
            xd = x
        h = torch.mm(xd.reshape(-1, x.shape[-1]), a.to(dtype).t())
        del xd
        out = torch.addmm(base_out.reshape(-1, base_out.shape[-1]), h, b.to(dtype).t(), alpha=scaling)
        need_x, _, need_a, need_b = ctx.needs_input_grad[:4]
        # Only what the wanted gradients need (x also to redraw the mask when only x's gradient is wanted).
        ctx.save_for_backward(x if need_a or (need_x and p > 0) else None, h if need_b else None,
                              a if need_x else None, b if need_x or need_a else None)
        ctx.p, ctx.scaling, ctx.dtype, ctx.state = p, scaling, dtype, state
        ctx.x_shape, ctx.device_type, ctx.a_dtype, ctx.b_dtype = x.shape, x.device.type, a.dtype, b.dtype
        return out.view(base_out.shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, h, a, b = ctx.saved_tensors
        need_x, need_base, need_a, need_b = ctx.needs_input_grad[:4]
        dtype, s, p = ctx.dtype, ctx.scaling, ctx.p
        with torch.autocast(ctx.device_type, enabled=False):  # the dtypes are explicit here
            g = grad.reshape(-1, grad.shape[-1]).to(dtype)
            grad_b = torch.mm(g.t(), h).mul_(s).to(ctx.b_dtype) if need_b else None
            grad_x = grad_a = None
            if need_x or need_a:
                grad_h = torch.mm(g, b.to(dtype)).mul_(s)
                if p > 0:
                    xd, mask = _redraw(x, p, ctx.state)
                else:
                    xd, mask = x, None
                if need_a:
                    grad_a = torch.mm(grad_h.t(), xd.reshape(-1, xd.shape[-1])).to(ctx.a_dtype)
                del xd
                if need_x:
                    gx = torch.mm(grad_h, a.to(dtype)).view(ctx.x_shape)
                    grad_x = gx if mask is None else torch.ops.aten.native_dropout_backward(gx, mask, 1.0 / (1.0 - p))
        return grad_x, grad if need_base else None, grad_a, grad_b, None, None, None


def _dropout_p(drop: Any) -> float | None:
    """The dropout probability to apply now (0 for none), or None when it is not a plain dropout."""
    if isinstance(drop, torch.nn.Identity):
        return 0.0
    if type(drop) is torch.nn.Dropout and not drop.inplace:
        p = float(drop.p) if drop.training else 0.0
        return p if p < 1.0 else None
    return None


def _wrap(layer: Any) -> None:
    original = type(layer).forward.__get__(layer)

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        from .kernels import enabled

        actives = layer.active_adapters
        if not enabled("fused_lora") or args or kwargs or layer.disable_adapters or layer.merged or len(actives) != 1:
            return original(x, *args, **kwargs)
        name = actives[0]
        if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
            return original(x, *args, **kwargs)
        a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
        p = _dropout_p(layer.lora_dropout[name])
        on = torch.is_autocast_enabled(x.device.type)
        dtype = torch.get_autocast_dtype(x.device.type) if on else a.dtype
        if p is None or x.dtype != dtype or (p > 0 and not _has_rng(x.device)):
            return original(x, *args, **kwargs)
        result = layer.base_layer(x)
        if result.dtype != dtype:  # a base layer that does not answer in its input's dtype
            return original(x, *args, **kwargs)
        return LoraBranch.apply(x, result, a, b, p, float(layer.scaling[name]), dtype)

    layer.forward = forward
    layer._qlora_fused = True


def fuse_lora_layers(model: Any) -> int:
    """Give every peft 4-bit LoRA layer of `model` the fused forward; returns how many."""
    try:
        from peft.tuners.lora.bnb import Linear4bit
    except ImportError:
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, Linear4bit) and not getattr(m, "_qlora_fused", False):
            _wrap(m)
            n += 1
    return n
