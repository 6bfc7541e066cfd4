"""Gradient checkpointing whose saved layer inputs wait in pinned host memory, not on the GPU.

Plain checkpointing keeps one tensor per decoder layer alive until backward: the layer's input,
(tokens x hidden) in the compute dtype. At the Llama-3-8B shape that is 32 x 4096 x 2 bytes =
0.25 GiB per 1k tokens of the micro-batch, most of what grows with the sequence. Here each
layer's forward runs without building a graph, its input is copied to pinned host memory on a
side stream (the copy overlaps the next layers' work), and backward copies it back, replays the
layer with the forward's RNG state and autocast settings (so dropout masks are the same) and
hands back the gradients of the input and of the layer's trainable (LoRA) weights.

`offload_checkpointing(model)` wraps the forward of every decoder layer (every
`transformers.modeling_layers.GradientCheckpointingLayer`, else the modules of
`model.model.layers`); transformers' own checkpointing must then be off. On the CPU the "host
copy" is the tensor itself, so the same code runs in the CPU tests.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

_SIDE: dict[Any, Any] = {}


def _to_host(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """A pinned host copy of x made on a side stream, and the event that marks it done."""
    if not x.is_cuda:
        return x.detach(), None
    side = _SIDE.get(x.device)
    if side is None:
        side = _SIDE[x.device] = torch.cuda.Stream(device=x.device)
    buf = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        buf.copy_(x, non_blocking=True)
        done = torch.cuda.Event()
        done.record(side)
    x.record_stream(side)  # the allocator must not hand x's memory out before the copy has read it
    return buf, done


class _Saved:
    """One layer's offloaded input: the host copy, and the device copy once it is on its way back."""

    __slots__ = ("host", "done", "back", "back_done", "__weakref__")

    def __init__(self, host: torch.Tensor, done: Any) -> None:
        self.host, self.done = host, done
        self.back: torch.Tensor | None = None
        self.back_done: Any = None

    def prefetch(self, device: torch.device) -> None:
        """Start the copy back on the side stream (backward of the layer after this one runs meanwhile)."""
        if self.back is not None or self.done is None or self.host is None:
            return
        side = _SIDE[device]
        with torch.cuda.stream(side):
            side.wait_event(self.done)
            self.back = self.host.to(device, non_blocking=True)
            self.back_done = torch.cuda.Event()
            self.back_done.record(side)

    def take(self, device: torch.device) -> torch.Tensor:
        """The input on the device, for this layer's replay."""
        if self.done is None:  # the CPU: the tensor itself
            out = self.host
        elif self.back is not None:
            current = torch.cuda.current_stream(device)
            current.wait_event(self.back_done)
            self.back.record_stream(current)
            out = self.back
        else:
            torch.cuda.current_stream(device).wait_event(self.done)
            out = self.host.to(device, non_blocking=True)
        self.host = self.back = None
        return out


# Inputs saved by forwards whose backward has not run yet, in forward order (weak: a graph that
# is dropped without backward takes its entry with it). Backward runs the layers in reverse, so
# the one before the layer being replayed is the next to need its input: it is prefetched.
_ORDER: list[Any] = []


def _prefetch_before(saved: _Saved, device: torch.device) -> None:
    """Drop `saved` (and dead entries) from the order and start the copy back of the one before it."""
    alive = [r for r in _ORDER if r() is not None and r() is not saved]
    index = next((i for i, r in enumerate(_ORDER) if r() is saved), None)
    before = None
    if index is not None:
        for r in reversed(_ORDER[:index]):
            if r() is not None:
                before = r()
                break
    _ORDER[:] = alive
    if before is not None:
        before.prefetch(device)


class _OffloadedLayer(torch.autograd.Function):
    """forward(run, hidden, *trainable) -> run(hidden) without a graph; backward replays run."""

    @staticmethod
    def forward(ctx: Any, run: Callable[[Any], Any], hidden: Any, *params: Any) -> Any:
        dev = hidden.device
        ctx.run, ctx.device, ctx.params, ctx.h_grad = run, dev, params, hidden.requires_grad
        ctx.autocast = (torch.is_autocast_enabled(dev.type), torch.get_autocast_dtype(dev.type))
        ctx.rng_cpu = torch.get_rng_state()
        ctx.rng_dev = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
        ctx.saved = _Saved(*_to_host(hidden))
        if hidden.is_cuda:
            import weakref

            _ORDER.append(weakref.ref(ctx.saved))
            del _ORDER[:-4096]
        out = run(hidden)
        return out[0] if isinstance(out, tuple) else out

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        dev = ctx.device
        saved = ctx.saved
        hidden = saved.take(dev).detach().requires_grad_(ctx.h_grad)
        if dev.type == "cuda":
            _prefetch_before(saved, dev)
        ctx.saved = None
        on, dtype = ctx.autocast
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [], device_type=dev.type):
            torch.set_rng_state(ctx.rng_cpu)
            if ctx.rng_dev is not None:
                torch.cuda.set_rng_state(ctx.rng_dev, dev)
            with torch.enable_grad(), torch.autocast(dev.type, dtype=dtype, enabled=on):
                out = ctx.run(hidden)
        ctx.run = None  # drops the closure (and the replayed output it may hold) with this backward
        out = out[0] if isinstance(out, tuple) else out
        wanted = [i for i, p in enumerate(ctx.params) if p.requires_grad]
        inputs = ([hidden] if ctx.h_grad else []) + [ctx.params[i] for i in wanted]
        grads = list(torch.autograd.grad(out, inputs, grad, allow_unused=True)) if inputs else []
        g_hidden = grads.pop(0) if ctx.h_grad else None
        g_params: list[Any] = [None] * len(ctx.params)
        for i, g in zip(wanted, grads):
            g_params[i] = g
        return (None, g_hidden, *g_params)


def _wrap(layer: torch.nn.Module) -> None:
    inner = type(layer).forward.__get__(layer)

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not (layer.training and torch.is_grad_enabled()) or getattr(layer, "_qlora_keep", False):
            return inner(*args, **kwargs)
        from .kernels import enabled

        if not enabled("offload"):  # turned off after setup: plain (non-reentrant) checkpointing
            from torch.utils.checkpoint import checkpoint

            return checkpoint(inner, *args, use_reentrant=False, **kwargs)
        if args:
            hidden, rest = args[0], args[1:]
        else:
            hidden, rest = kwargs.pop("hidden_states"), ()
        others = list(rest) + list(kwargs.values())
        if any(isinstance(x, torch.Tensor) and x.requires_grad for x in others):
            # Another input needs a gradient: only plain checkpointing knows how to give it.
            from torch.utils.checkpoint import checkpoint

            return checkpoint(lambda h: inner(h, *rest, **kwargs), hidden, use_reentrant=False)
        params = [p for p in layer.parameters() if p.requires_grad]
        holder: list[Any] = []

        def run(h: Any) -> Any:
            out = inner(h, *rest, **kwargs)
            holder.append(out)
            return out

        first = _OffloadedLayer.apply(run, hidden, *params)
        out = holder.pop() if holder else first  # the closure lives on in ctx: hold no output there
        return (first, *out[1:]) if isinstance(out, tuple) else first

    layer.forward = forward  # type: ignore[method-assign]
    layer._qlora_offloaded = True  # type: ignore[attr-defined]


MLP_TILE_TOKENS = 8192


def _tile_mlp(mlp: torch.nn.Module, tile: int) -> None:
    inner = type(mlp).forward.__get__(mlp)

    def forward(x: Any) -> Any:
        from .kernels import enabled

        n = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
        if not (mlp.training and enabled("tiled_mlp")) or x.dim() != 3 or n <= 2 * tile:
            return inner(x)
        from torch.utils.checkpoint import checkpoint

        flat = x.reshape(1, n, x.shape[-1])
        grad = torch.is_grad_enabled()
        parts = [checkpoint(inner, c, use_reentrant=False) if grad else inner(c) for c in flat.split(tile, dim=1)]
        return torch.cat(parts, dim=1).view(*x.shape[:-1], -1)

    mlp.forward = forward  # type: ignore[method-assign]


def tile_mlps(model: Any, tile: int = MLP_TILE_TOKENS) -> int:
    """Run each decoder layer's MLP over token tiles when a micro-batch is long (> 2 tiles).

    The MLP is position-wise, so tiles give the same function; each tile is checkpointed, so
    backward holds the wide (intermediate_size) activations of one tile instead of the whole
    sequence, for one more MLP forward. Tiling happens in the forward and in its replay alike, so
    dropout masks match. Returns how many MLPs were wrapped.
    """
    n = 0
    for layer in decoder_layers(model):
        mlp = getattr(layer, "mlp", None)
        if isinstance(mlp, torch.nn.Module) and not getattr(mlp, "_qlora_tiled", False):
            _tile_mlp(mlp, tile)
            mlp._qlora_tiled = True  # type: ignore[attr-defined]
            n += 1
    return n


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The model's decoder layers (what checkpointing wraps)."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:
        GradientCheckpointingLayer = None  # type: ignore[assignment,misc]
    if GradientCheckpointingLayer is not None:
        found = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
        if found:
            return found
    inner = getattr(model, "model", None)
    return list(getattr(inner, "layers", []) or [])


def offload_checkpointing(model: Any) -> int:
    """Checkpoint every decoder layer with its input offloaded to host memory; returns how many."""
    layers = [m for m in decoder_layers(model) if not getattr(m, "_qlora_offloaded", False)]
    for m in layers:
        if getattr(m, "gradient_checkpointing", False):
            raise ValueError("turn transformers' gradient checkpointing off before offloaded checkpointing")
        _wrap(m)
    return len(layers)


def keep_layers(model: Any, keep: int) -> int:
    """Take the first `keep` decoder layers out of checkpointing (their activations stay on the
    GPU until backward, which then needs no replay); the others stay checkpointed. Works with the
    offloaded checkpointing above and with transformers' own. Returns how many are kept."""
    layers = decoder_layers(model)
    keep = max(0, min(keep, len(layers)))
    for n, m in enumerate(layers):
        kept = n < keep
        m._qlora_keep = kept  # type: ignore[attr-defined]
        if not getattr(m, "_qlora_offloaded", False) and hasattr(m, "gradient_checkpointing"):
            if not hasattr(m, "_qlora_ckpt_was"):
                m._qlora_ckpt_was = bool(m.gradient_checkpointing)  # type: ignore[attr-defined]
            m.gradient_checkpointing = m._qlora_ckpt_was and not kept  # type: ignore[attr-defined]
    return keep
