"""Fast paths of the training step that only exist on a GPU, each with the plain path beside it.

- Mixed precision: with bf16 compute the forward runs under `torch.autocast`, so the LoRA
  matmuls run in bf16 and save bf16 inputs for backward. Without it peft casts every LoRA input
  to the fp32 of the adapter weights: fp32 copies of each projection's input (as wide as the MLP
  for down_proj) kept for backward, and fp32 matmuls. The adapter weights and their optimizer
  state stay fp32. fp16 keeps the plain path (its gradients would need loss scaling).
- Fused kernels: when the optional `liger-kernel` package is installed and the model is on CUDA,
  its Triton RMSNorm, rotary embedding and SwiGLU replace the eager ones (fewer passes over the
  activations). Its cross-entropy is not used: the engine's chunked head loss already avoids
  full logits. The CPU, and a GPU without the package, keep the eager modules.
- Allocator: expandable segments, so memory freed between packed micro-batches of different
  lengths is reused instead of held as reserved-but-unused blocks.

- Variable-length flash attention (varlen.py) for packed rows, and checkpointed layer inputs
  kept in pinned host memory (offload.py) while the forward runs on; micro-batches longer than
  two tiles of 8,192 tokens run the MLP tile by tile (offload.py's tile_mlps).
- LoRA on 4-bit layers with the adapter's product accumulated into the base output by one
  matmul (lora_fused.py) instead of peft's copy, scale and add over the whole output; with
  dropout on, backward draws the mask again instead of keeping it and a dropped-out input copy.

`QLORA_STUDIO_DISABLE=segments,varlen,liger,autocast,expandable,offload,tiled_mlp,fused_lora`
(any subset) turns fast paths off, to
compare them on a given machine or to step around one that misbehaves; the run log says which
paths are on.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any

_ALLOC_CONF = "PYTORCH_CUDA_ALLOC_CONF"
FAST_PATHS = ("segments", "varlen", "liger", "autocast", "expandable", "offload", "tiled_mlp", "fused_lora")


def enabled(path: str) -> bool:
    """Whether a fast path is on (all are unless QLORA_STUDIO_DISABLE names them)."""
    assert path in FAST_PATHS, path
    off = {x.strip() for x in os.environ.get("QLORA_STUDIO_DISABLE", "").split(",")}
    return path not in off


def prefer_expandable_segments() -> bool:
    """Ask the CUDA caching allocator for expandable segments unless the user configured it."""
    if not enabled("expandable") or _ALLOC_CONF in os.environ or "PYTORCH_ALLOC_CONF" in os.environ:
        return False
    os.environ[_ALLOC_CONF] = "expandable_segments:True"
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.memory._set_allocator_settings("expandable_segments:True")  # type: ignore[attr-defined]
    except (ImportError, AttributeError, RuntimeError):
        return False
    return True


def autocast_for(device: str, compute_dtype: Any) -> Any:
    """The context the forward runs in: bf16 autocast on CUDA with bf16 compute, else nothing."""
    import torch

    if device == "cuda" and compute_dtype == torch.bfloat16 and enabled("autocast"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def apply_fused_kernels(model: Any, device: str) -> str | None:
    """Swap in Liger's RMSNorm/RoPE/SwiGLU on CUDA when installed; returns what was done, or None."""
    if device != "cuda" or not enabled("liger"):
        return None
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        return None
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"liger-kernel has no kernels for model type {model_type}; eager modules kept"
    try:
        _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                        fused_linear_cross_entropy=False)
    except (TypeError, ValueError, AttributeError, NotImplementedError) as err:
        return f"liger-kernel not applied to {model_type}: {err}"
    return f"liger-kernel RMSNorm, RoPE and SwiGLU on {model_type}"
