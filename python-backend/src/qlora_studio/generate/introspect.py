"""What a base model looks like (config, linear module names) without loading its weights."""
from __future__ import annotations

from typing import Any


def introspect_model(base_model: str, trust_remote_code: bool = False) -> dict[str, Any]:
    """`{config, linear_modules, lora_targets, num_parameters}` for a folder or hub id.

    The model is built on the meta device, so this costs no memory; linear_modules are the
    distinct leaf names of nn.Linear modules (what `lora.target_modules` accepts), lora_targets
    the same without the output head (what "all-linear" selects).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ..train.model import check_local_model

    check_local_model(base_model, base_model.startswith(("/", "./", "../", "~")))
    config = AutoConfig.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    head_names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is model.get_output_embeddings()}
    return {
        "config": config.to_dict(),
        "linear_modules": names,
        "lora_targets": [n for n in names if n not in head_names],
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
