"""A leaner forward for peft's LoRA layers on 4-bit bases: the adapter's product lands in the GEMM.

peft computes `result = base(x).clone(); result = result + lora_B(lora_A(dropout(x))) * scaling`:
besides the two small adapter matmuls that is a copy, a scale and an add over the layer's whole
output (as wide as the MLP for gate and up), three extra passes over the largest tensors of the
step and a handful of launches per layer. Here the second adapter matmul takes the base output
as its accumulator: `addmm(base(x), lora_A(dropout(x)), B^T, alpha=scaling)`, the same function
in one kernel. Dropout, scaling, the adapter weights and their gradients are peft's own.

It applies where that is the same computation: one active plain LoRA adapter (no DoRA or other
variant, not merged, adapters enabled, no per-call adapter names), and either autocast on (the
adapter runs in the compute dtype, as peft does under autocast) or adapter and output of the same
dtype. Anything else takes peft's forward unchanged.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


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
        result = layer.base_layer(x)
        dtype = result.dtype
        if not (torch.is_autocast_enabled(x.device.type) or a.dtype == dtype):
            return original(x, *args, **kwargs)
        h = F.linear(layer.lora_dropout[name](x).to(dtype), a.to(dtype))
        out = torch.addmm(result.reshape(-1, result.shape[-1]), h.reshape(-1, h.shape[-1]), b.to(dtype).t(),
                          alpha=layer.scaling[name])
        return out.view(result.shape)

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
