"""Run the engine as bitsandbytes runs it on a CPU with AVX512-BF16 — on any x86 CPU.

On such a CPU a `Linear4bit` in eval mode, fed an input that needs no gradient, repacks its 4-bit
weight for an inference kernel (`_convert_weight_packed_for_cpu`: another layout, bf16 scales,
double quantization undone) and keeps the repacked weight; every later forward, training
included, then runs the inference kernel. Two things decide this, both read on the machine:
`Linear4bit.support_avx512bf16_for_cpu` (set from `has_avx512bf16()` when the layer is built) and
the CPU kernel registered for `bitsandbytes::gemv_4bit` (the native one only where the CPU has
the instructions: it would die of SIGILL elsewhere).

`install()` makes both say yes: layers are built believing the CPU has AVX512-BF16, and
`bitsandbytes::gemv_4bit` on the CPU gets a STAND-IN for the native AVX512-BF16 kernel, written
in plain torch (unpack the repacked layout, scale by the bf16 absmax, multiply in bf16 as the
native kernel does). The repack itself, the decision to repack and everything around them are
bitsandbytes' own code. Use it in a fresh process:

    python avx512bf16_cpu.py --probe OUT.jsonl -- run RECIPE ...   # the CLI, emulated, probed
    python avx512bf16_cpu.py --self-check                           # the emulation does repack

`--probe` records, around every evaluation, each state evaluation could leave changed behind:
the 4-bit weights' storage and quantization state, the modules' train/eval flags, the python,
numpy and torch (and CUDA) RNG states and the training data position.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import torch


def _standin_gemv_4bit(A: torch.Tensor, B: torch.Tensor, shapeB: Any, absmax: torch.Tensor, code: torch.Tensor,
                       blocksize: int) -> torch.Tensor:
    """STAND-IN for the native AVX512-BF16 4-bit kernel: B in the CPU-repacked layout [N, K/2]."""
    n = int(shapeB[0])
    packed = B.contiguous().view(torch.uint8).reshape(-1, 32)
    nibbles = torch.cat([packed & 0xF, packed >> 4], dim=-1)  # per 64 values: 32 low, then 32 high
    k_half = packed.numel() // n
    idx = nibbles.reshape(n // 32, k_half, 32, 2).transpose(1, 2).reshape(n, 2 * k_half).long()
    scale = absmax.float().t().repeat_interleave(int(blocksize), dim=1)  # absmax is [K/blocksize, N]
    weight = (code.float()[idx] * scale).to(torch.bfloat16)
    out = A.to(torch.bfloat16).reshape(-1, A.shape[-1]) @ weight.t()
    return out.to(A.dtype).reshape(*A.shape[:-1], n)


def install() -> None:
    """Make bitsandbytes in this process behave as on a CPU with AVX512-BF16 (see the module doc)."""
    import bitsandbytes.nn.modules as bnb_modules

    bnb_modules.has_avx512bf16 = lambda: True  # read by Linear4bit.__init__
    torch.library.register_kernel("bitsandbytes::gemv_4bit", "cpu", _standin_gemv_4bit)


def _digest(t: torch.Tensor) -> str:
    t = t.detach().contiguous().cpu()
    return f"{t.dtype}{list(t.shape)}:" + hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def snapshot(run: Any) -> dict[str, Any]:
    """Every state an evaluation touches and must leave as training had it."""
    import bitsandbytes as bnb
    import numpy as np

    layers = {}
    for name, m in run.model.named_modules():
        if isinstance(m, bnb.nn.Linear4bit):
            qs = m.weight.quant_state
            layers[name] = {"weight": _digest(m.weight.data), "absmax": _digest(qs.absmax), "nested": bool(qs.nested),
                            "dtype": str(qs.dtype), "repacked": bool(getattr(qs, "packing_format_for_cpu", False))}
    state = {
        "layers": layers,
        "training_flags": sorted(n for n, m in run.model.named_modules() if m.training),
        "python_rng": hashlib.sha256(repr(random.getstate()).encode()).hexdigest(),
        "numpy_rng": hashlib.sha256(repr(np.random.get_state()).encode()).hexdigest(),
        "torch_rng": _digest(torch.get_rng_state()),
        "data_position": [run.state["epoch"], run.state["batch_index"]],
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = [_digest(s) for s in torch.cuda.get_rng_state_all()]
    return state


def _probe_evaluations(out: Path) -> None:
    from qlora_studio.train import qlora

    real = qlora.QLoRARun.evaluate

    def evaluate(self: Any) -> bool:
        before = snapshot(self)
        stop = real(self)
        with out.open("a") as f:
            f.write(json.dumps({"step": self.state["step"], "before": before, "after": snapshot(self)}) + "\n")
        return stop

    qlora.QLoRARun.evaluate = evaluate


def self_check() -> dict[str, Any]:
    """One 4-bit layer through eval and train forwards: does the emulated CPU repack, and keep it?"""
    import bitsandbytes as bnb

    torch.manual_seed(0)
    dense = torch.nn.Linear(256, 96, bias=False)
    layer = bnb.nn.Linear4bit(256, 96, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type="nf4")
    layer = layer.to("cpu")
    x = torch.randn(3, 256)
    train_out = layer(x)
    layer.eval()
    with torch.no_grad():
        eval_out = layer(x)
    layer.train()
    qs = layer.weight.quant_state
    return {"repacked_after_eval": bool(getattr(qs, "packing_format_for_cpu", False)),
            "eval_max_abs_diff": float((eval_out - train_out).abs().max()),
            "train_out_max_abs": float(train_out.abs().max()), "eval_bit_equal": bool(torch.equal(eval_out, train_out))}


def main(argv: list[str]) -> int:
    install()
    if argv[:1] == ["--self-check"]:
        print(json.dumps(self_check()))
        return 0
    if argv[:1] == ["--probe"]:
        _probe_evaluations(Path(argv[1]))
        argv = argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    from qlora_studio.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
