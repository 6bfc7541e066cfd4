"""Variable-length flash attention for packed rows: one kernel launch per layer, not one per example.

PyTorch ships the flash-attention kernels with their variable-length entry point
(`aten::_flash_attention_forward/backward` with cumulative sequence offsets). Packed rows are a
list of examples laid end to end, which is exactly what that entry point takes: (tokens, heads,
head_dim) tensors plus the offsets where each example starts. Calling it directly keeps the
attention of a whole micro-batch in one launch (per-example SDPA calls cost a launch and a few
small kernels per example and layer, which made small models CPU-bound) and hands grouped-query
key/value heads to the kernel as they are.

`varlen_usable` says when the path applies (CUDA, bf16/fp16, head_dim <= 256, the op present,
not turned off by QLORA_STUDIO_DISABLE=varlen). The first call in a process checks the kernel
against per-segment SDPA on a small case, forward and backward; a mismatch or an error turns the
path off for the process (the caller then uses per-segment SDPA) and `NOTES` says why.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

NOTES: list[str] = []
_STATE: dict[str, Any] = {"checked": None}  # None: not checked yet; True/False: the self-check's answer


def _flash_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, longest: int, causal: bool,
               scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    out, lse, rng, unused, _ = torch.ops.aten._flash_attention_forward(q, k, v, cu, cu, longest, longest, 0.0, causal,
                                                                         False, scale=scale)
    return out, lse, rng, unused


def _flash_bwd(grad: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
               lse: torch.Tensor, cu: torch.Tensor, longest: int, causal: bool, rng: torch.Tensor,
               unused: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dq, dk, dv = torch.ops.aten._flash_attention_backward(grad, q, k, v, out, lse, cu, cu, longest, longest, 0.0,
                                                          causal, rng, unused, scale=scale)
    return dq, dk, dv


KERNELS: dict[str, Any] = {"fwd": _flash_fwd, "bwd": _flash_bwd}


def _last_dim_dense(x: torch.Tensor) -> torch.Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


class _VarlenFlash(torch.autograd.Function):
    """q (N, H, D), k/v (N, Hkv, D), offsets cu (S+1,) int32 -> (N, H, D); gradients for q, k, v."""

    @staticmethod
    def forward(ctx: Any, q: Any, k: Any, v: Any, cu: Any, longest: int, causal: bool, scale: float) -> Any:
        q, k, v = _last_dim_dense(q), _last_dim_dense(k), _last_dim_dense(v)
        out, lse, rng, unused = KERNELS["fwd"](q, k, v, cu, longest, causal, scale)
        ctx.save_for_backward(q, k, v, out, lse, cu, rng, unused)
        ctx.meta = (longest, causal, scale)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        q, k, v, out, lse, cu, rng, unused = ctx.saved_tensors
        longest, causal, scale = ctx.meta
        dq, dk, dv = KERNELS["bwd"](grad.contiguous(), q, k, v, out, lse, cu, longest, causal, rng, unused, scale)
        return dq, dk, dv, None, None, None, None


def varlen_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, longest: int, causal: bool,
                 scale: float) -> torch.Tensor:
    """Attention of every segment [cu[i], cu[i+1]) with itself only; (N, H, D) layout, Hkv may divide H."""
    return _VarlenFlash.apply(q, k, v, cu, longest, causal, scale)


def reference_segments(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: list[int], causal: bool,
                       scale: float) -> torch.Tensor:
    """The same function through one SDPA call per segment, (N, H, D) layout (the check's reference)."""
    rep = q.shape[1] // k.shape[1]
    parts = []
    for s, e in zip(cu, cu[1:]):
        qs, ks, vs = (x[s:e].transpose(0, 1)[None] for x in (q, k, v))
        ks, vs = ks.repeat_interleave(rep, dim=1), vs.repeat_interleave(rep, dim=1)
        parts.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, scale=scale)[0].transpose(0, 1))
    return torch.cat(parts, dim=0)


def self_check(device: torch.device, dtype: torch.dtype) -> bool:
    """Kernel against per-segment SDPA, forward and backward, on 3 segments with grouped heads."""
    g = torch.Generator(device="cpu").manual_seed(0)
    cu_list = [0, 5, 37, 48]
    shapes = ((48, 4, 64), (48, 2, 64), (48, 2, 64))
    base = [torch.randn(s, generator=g).to(device, dtype) for s in shapes]
    grad = torch.randn(48, 4, 64, generator=g).to(device, dtype)
    cu = torch.tensor(cu_list, dtype=torch.int32, device=device)
    results = []
    for fn in (lambda q, k, v: varlen_flash(q, k, v, cu, 32, True, 0.125),
               lambda q, k, v: reference_segments(q, k, v, cu_list, True, 0.125)):
        leaves = [x.clone().requires_grad_() for x in base]
        out = fn(*leaves)
        out.backward(grad)
        results.append([out.detach().float()] + [x.grad.float() for x in leaves])
    worst = max(float((a - b).abs().max()) for a, b in zip(*results))
    if worst > 2e-2:
        NOTES.append(f"variable-length flash attention differs from per-segment SDPA by {worst:.3g}; not used")
        return False
    return True


def varlen_usable(query: torch.Tensor, key: torch.Tensor) -> bool:
    """Whether this attention call can take the variable-length flash path (checked once per process)."""
    from .kernels import enabled

    if not (query.is_cuda and enabled("varlen") and query.dtype in (torch.float16, torch.bfloat16)):
        return False
    if query.shape[-1] > 256 or query.shape[1] % key.shape[1] or not hasattr(torch.ops.aten, "_flash_attention_forward"):
        return False
    return check_once(query.device, query.dtype)


def check_once(device: torch.device, dtype: torch.dtype) -> bool:
    """The self-check's answer for this process (run on the first call)."""
    if _STATE["checked"] is None:
        try:  # identity hooks: a checkpointed forward's own saved-tensor hooks stay out of the check
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(lambda x: x, lambda x: x):
                _STATE["checked"] = self_check(device, dtype)
        except RuntimeError as err:  # no flash kernel for this GPU / build, or no grouped heads in it
            NOTES.append(f"variable-length flash attention unavailable: {str(err).splitlines()[0][:200]}")
            _STATE["checked"] = False
    return bool(_STATE["checked"])
