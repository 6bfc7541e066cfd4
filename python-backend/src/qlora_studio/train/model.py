"""Loading the frozen base model: 4-bit (or 8-bit) through bitsandbytes, on CUDA or the CPU.

Training and generation load the base the same way, so the playground shows the adapter on the
exact weights it was trained against.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EXIT_BAD_RECIPE, StudioError

_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32", "uint8": "uint8"}


class ModelNotFoundError(StudioError, FileNotFoundError):
    """The base model folder does not exist (or lacks config.json)."""

    kind, exit_code, protocol_code = "bad_recipe", EXIT_BAD_RECIPE, "not_found"
    hint = "Fix base_model in the recipe."


def pick_device() -> str:
    """"cuda" when a GPU is usable, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_compute_dtype(name: str, device: str) -> Any:
    """The matmul dtype: "auto" is bf16 on GPUs that support it, fp16 on other GPUs, fp32 on the CPU."""
    import torch

    if name == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, _DTYPES[name])


def check_local_model(location: str, looks_local: bool) -> None:
    """Fail early, with the fix, when a local base model folder is missing or incomplete."""
    if not looks_local:
        return
    p = Path(location)
    if not p.is_dir():
        hint = ""
        if "examples/tiny" in p.as_posix():
            hint = " Build the tiny example first: python examples/tiny/make_tiny.py"
        raise ModelNotFoundError(f"base_model folder {p} does not exist.{hint}")
    if not (p / "config.json").exists():
        raise ModelNotFoundError(f"base_model folder {p} has no config.json; point base_model at a "
                                 "folder saved with save_pretrained, or at a Hugging Face id")


def quantization_config(bits: int, quant_type: str, double_quant: bool, compute_dtype: Any,
                        quant_storage: str = "uint8") -> Any:
    """The BitsAndBytesConfig for the frozen base."""
    import torch
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant_type,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_quant_storage=getattr(torch, _DTYPES[quant_storage]),
    )


def load_quantized_base(location: str, *, bits: int = 4, quant_type: str = "nf4", double_quant: bool = True,
                        compute_dtype: str = "auto", quant_storage: str = "uint8", device: str | None = None,
                        trust_remote_code: bool = False, revision: str | None = None,
                        looks_local: bool | None = None, device_index: int = 0) -> tuple[Any, dict[str, Any]]:
    """Load a causal LM with its linear layers quantized by bitsandbytes.

    Returns (model, info) where info names the device and dtypes, for the run log. The CPU path
    is the real bitsandbytes 4-bit kernel too, not a float stand-in. `device_index` is the GPU a
    data-parallel rank loads onto.
    """
    import torch
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    if looks_local is None:
        looks_local = location.startswith(("/", "./", "../", "~")) or Path(location).exists()
    check_local_model(location, looks_local)
    cdtype = resolve_compute_dtype(compute_dtype, device)
    qcfg = quantization_config(bits, quant_type, double_quant, cdtype, quant_storage)
    kwargs: dict[str, Any] = {
        "quantization_config": qcfg,
        "dtype": cdtype if device == "cuda" else torch.float32,
        "device_map": {"": device_index} if device == "cuda" else {"": "cpu"},
        "trust_remote_code": trust_remote_code,
    }
    if revision and not looks_local:
        kwargs["revision"] = revision
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    info = {"device": device, "compute_dtype": str(cdtype).replace("torch.", ""), "bits": bits,
            "quant_type": quant_type, "double_quant": double_quant}
    return model, info


def prepare_frozen_base(model: Any, *, gradient_checkpointing: bool) -> None:
    """Freeze every base weight and turn on (non-reentrant) gradient checkpointing, in place.

    What peft's `prepare_model_for_kbit_training` does for this engine, minus its cast of every
    non-quantized weight (embeddings, output head, norms) to fp32: those copies were cast back
    to the compute dtype right after, but for a moment they held twice their memory (about 4 GiB
    at the Llama-3-8B shape), which set the run's peak.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def eval_mode(model: Any) -> None:
    """model.eval(), keeping CPU 4-bit layers the CPU inference kernel cannot repack in training mode.

    In eval mode bitsandbytes repacks CPU 4-bit weights for a faster kernel, which requires
    out_features to be a multiple of 32; layers that are not stay on the training path (same
    result, no crash).
    """
    model.eval()
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit) and m.weight.device.type == "cpu" and m.out_features % 32:
            m.training = True
