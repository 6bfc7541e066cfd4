"""Peak GPU memory of a QLoRA run, estimated from the model's config and the recipe.

The model is a standard decoder (Llama / Mistral / Qwen shape): per layer q,k,v,o attention
projections and a gated MLP (gate, up, down). Everything is counted per GPU. Formulas, with
h = hidden_size, i = intermediate_size, L = layers, V = vocab, d = head_dim, T = micro_batch x
max_seq_len, c = bytes of the compute dtype (2 for bf16/fp16, 4 for fp32):

  weights      linear params x (bits/8 + quantization constants) + embeddings (+ lm_head unless
               tied) and norms in the compute dtype. 4-bit constants: one fp32 absmax per 64
               weights = 0.5 bit/param, or with double quant an 8-bit absmax per 64 plus one fp32
               per 256 absmax = 8/64 + 32/16384 = 0.127 bit/param.
  lora         r x (in + out) per adapted module, fp32 weights + fp32 grads (8 bytes/param).
  optimizer    Adam's two moments: 2 bytes/param for 8-bit AdamW, 8 for 32-bit.
  activations  what backward needs, per token and layer, in the compute dtype: both norm inputs
               (2h), both norm outputs (2h), q,k,v ((heads + 2 kv_heads) x d), the attention
               output (heads x d), gate, up and their product (3i: the fused SwiGLU recomputes
               silu(gate) in backward). LoRA dropout adds nothing: on a GPU the engine's
               LoRA branch keeps the layer input it shares with the 4-bit matmul and draws the
               mask again in backward (train/lora_fused.py) instead of keeping a dropped-out
               copy per module. With gradient checkpointing each
               layer's input waits in host memory (the engine offloads it on a GPU): two of
               them are on the GPU at a time (the one replayed, the one coming back) and one
               layer is recomputed at a time: 2 x T x h x c + T x per_layer x c, where the MLP
               part (3i) counts 8,192 tokens once T is over
               16,384 (the MLP runs in tiles then), plus the gradient buffers of the layer being
               replayed, 6h per token (flash backward's fp32 dq accumulator and its dk/dv over
               all query heads, the residual stream's gradients; 16h once the MLP runs in
               tiles, as measured at long sequences). Without it: L x T x per_layer x c. Plus the
               dequantized copy of the largest 4-bit weight that a matmul needs at a time.
               Attention scores are not stored (SDPA / flash attention).
  logits       what the loss holds (train/loss.py). The engine's chunked loss keeps the decoder's
               hidden states of the trained positions and their gradient (2 x N x h x c, N =
               trained tokens, counted as T since which tokens carry loss depends on the data),
               and runs the frozen head over chunks of at most 2**25 / V rows; one chunk holds
               its logits in the compute dtype and in fp32 at once: rows x V x (c + 4). Models
               that transform logits after the head (soft-capping, scaling) take the plain path:
               full logits T x V x c, their fp32 copy and cross-entropy's log-softmax, T x V x
               (c + 8).
  overhead     a constant for the CUDA context, cuBLAS workspace and allocator slack (the
               context alone measured 0.9 to 1.2 GiB on an H200 with torch 2.11 / CUDA 13).

Mirror: src/recipe/estimate.ts computes the same figures for the editor's CodeLens; both are
checked against test/fixtures/recipes/estimates.json (scripts/gen_estimate_vectors.py writes it).

It is a planning figure, not a promise: fragmentation, kernels' scratch space and long sequences
without packing move the real peak by some percent. bench/ measures it against real runs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

GIB = 1024**3
OVERHEAD_GIB = 1.0
# Double-quant: 8-bit absmax per 64-weight block + one fp32 scale per 256 absmax values.
DOUBLE_QUANT_BITS = 8 / 64 + 32 / (64 * 256)
SINGLE_QUANT_BITS = 32 / 64
OPTIMIZER_BYTES = {"paged_adamw_8bit": 2, "adamw_8bit": 2, "paged_adamw_32bit": 8, "adamw": 8}
# Rows of one chunk of the loss: 2**25 fp32 logits at a time (train/loss.py's _CHUNK_ELEMENTS).
LOSS_CHUNK_ELEMENTS = 1 << 25
# Config attributes of models whose loss takes the plain (full-logits) path (train/loss.py).
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")
# Tokens of one MLP tile when a micro-batch is longer than two tiles (train/offload.py).
MLP_TILE_TOKENS = 8192
# Values per token (x h) that a replayed layer's backward holds beyond the 6h of gradient buffers once
# its MLP runs in tiles: the tiles' joined outputs and gradients. Measured: the 8B shape's 24 GiB
# probes at 65,536-77,824 tokens grew 10h per token faster than the model without it (bench/results/gpu.md).
TILED_EXTRA_H = 10
LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Said with every estimate of a run whose memory plan is on (train/plan.py); src/recipe/estimate.ts says the same.
PLAN_NOTE = ("this is the peak of the recipe as written; after its first step a CUDA run may use more, up to "
             "training.memory_budget_gib (auto: the free GPU memory), to skip recomputation and join micro-batches; "
             "memory_budget_gib: 0 keeps this peak")
_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def load_model_config(recipe: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The base model's config.json, from its local folder or the local Hugging Face cache.

    Never downloads. Returns (config, None) or (None, why it is not available).
    """
    name = recipe.base_model
    if recipe.is_local_model():
        path = Path(recipe.model_location()) / "config.json"
        if not path.is_file():
            return None, f"no config.json in {path.parent}; the memory estimate needs the model's config"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None, f"{name} is a hub id and huggingface_hub is not installed to look in its cache"
        found = try_to_load_from_cache(name, "config.json", revision=recipe.revision)
        if not isinstance(found, str):
            return None, f"{name} is not in the local Hugging Face cache yet; download it once to get an estimate"
        path = Path(found)
    try:
        return json.loads(path.read_text("utf-8")), None
    except (OSError, ValueError) as e:
        return None, f"cannot read {path}: {e}"


REQUIRED_CONFIG = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def _count(value: Any) -> int | None:
    """A positive whole number from a config field, else None (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0 or value != int(value):
        return None
    return int(value)


def _shape(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's dimensions; raises ValueError naming the fields that are missing or unusable."""
    nested = config.get("text_config")
    cfg = nested if "hidden_size" not in config and isinstance(nested, dict) else config
    missing = [k for k in REQUIRED_CONFIG if _count(cfg.get(k)) is None]
    if missing:
        raise ValueError(", ".join(missing))
    h, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    return {
        "h": h,
        "i": _count(cfg.get("intermediate_size")) or 4 * h,
        "layers": int(cfg["num_hidden_layers"]),
        "heads": heads,
        "kv_heads": _count(cfg.get("num_key_value_heads")) or heads,
        "head_dim": _count(cfg.get("head_dim")) or h // heads,
        "vocab": int(cfg["vocab_size"]),
        "tied": cfg.get("tie_word_embeddings") is True,
        "plain_loss": any(cfg.get(k) not in (None, 1, 1.0) for k in LOGIT_TRANSFORMS),  # as train/loss.py decides
    }


def _linears(s: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear module of one layer."""
    h, i, d = s["h"], s["i"], s["head_dim"]
    return {
        "q_proj": (h, s["heads"] * d),
        "k_proj": (h, s["kv_heads"] * d),
        "v_proj": (h, s["kv_heads"] * d),
        "o_proj": (s["heads"] * d, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def _loss_bytes(tokens: int, s: dict[str, Any], c: int) -> int:
    """Bytes the loss holds at its peak: chunked over the head, or full logits on the plain path."""
    vocab = s["vocab"]
    if s["plain_loss"]:
        return tokens * vocab * (c + 8)
    rows = min(tokens, max(1, LOSS_CHUNK_ELEMENTS // vocab))
    return 2 * tokens * s["h"] * c + rows * vocab * (c + 4)


def _layer_parts(s: dict[str, Any], targets: list[str], dropout_copies: bool = False) -> tuple[int, int]:
    """Values per token that one layer keeps for backward: (attention side, MLP side).

    `dropout_copies` adds a dropped-out copy of each adapted module's input (peft's own LoRA
    forward with dropout on, which the engine uses where its fused branch does not apply)."""
    h, i = s["h"], s["i"]
    linears = _linears(s)
    attn_part = 4 * h + (s["heads"] + 2 * s["kv_heads"]) * s["head_dim"] + s["heads"] * s["head_dim"]
    mlp_part = 3 * i
    if dropout_copies:
        attn_part += sum(linears[m][0] for m in targets if m != "down_proj")
        mlp_part += linears["down_proj"][0] if "down_proj" in targets else 0
    return attn_part, mlp_part


def _targets(s: dict[str, Any], target_modules: Any) -> list[str]:
    """The adapted projections among one layer's linears."""
    linears = _linears(s)
    if target_modules == "all-linear":
        return list(LLAMA_LINEARS)
    return [m for m in target_modules if m in linears]


def layer_activation_bytes(model_config: dict[str, Any], recipe: Any, tokens: int,
                           dropout_copies: bool = False) -> int:
    """Bytes one decoder layer keeps for backward over a forward of `tokens` when it is not
    checkpointed (what train/plan.py charges per layer it keeps); `dropout_copies` when LoRA runs
    peft's own forward with dropout on. Raises ValueError for a config without the decoder's
    dimensions."""
    s = _shape(model_config)
    c = _DTYPE_BYTES.get(recipe.quantization.compute_dtype, 2)
    copies = dropout_copies and recipe.lora.dropout > 0
    attn_part, mlp_part = _layer_parts(s, _targets(s, recipe.lora.target_modules), copies)
    return tokens * (attn_part + mlp_part) * c


def _none(tokens: int, notes: list[str]) -> dict[str, Any]:
    keys = ("total_gib", "weights_gib", "lora_gib", "optimizer_gib", "activations_gib", "logits_gib", "overhead_gib")
    return {**dict.fromkeys(keys), "lora_params": None, "base_params": None, "tokens_per_step": tokens, "notes": notes}


def estimate_memory(recipe: Any, model_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Estimate the peak GPU memory (GiB, per device) of training `recipe`.

    `model_config` is the base model's config.json as a dict; when None it is read from the local
    model folder or the local Hugging Face cache. Without a config every figure is None and
    `notes` says why; `tokens_per_step` (micro_batch x max_seq_len x grad_accum) is always set.
    """
    t, d = recipe.training, recipe.data
    tokens = t.micro_batch_size * d.max_seq_len * t.grad_accum
    notes: list[str] = []
    if model_config is None:
        model_config, why = load_model_config(recipe)
        if model_config is None:
            return _none(tokens, [why or "no model config"])
    try:
        s = _shape(model_config)
    except ValueError as e:
        return _none(tokens, [f"the model config lacks usable {e}; cannot estimate memory for this architecture"])

    q, lora = recipe.quantization, recipe.lora
    c = _DTYPE_BYTES.get(q.compute_dtype, 2)
    if q.compute_dtype == "auto":
        notes.append("compute_dtype auto counted as bfloat16 (a GPU); the CPU computes in float32")
    linears = _linears(s)
    per_layer_linear = sum(a * b for a, b in linears.values())
    base_linear = s["layers"] * per_layer_linear
    embed = s["vocab"] * s["h"] * (1 if s["tied"] else 2)
    norms = s["layers"] * 2 * s["h"] + s["h"]
    if q.bits == 4:
        const_bits = DOUBLE_QUANT_BITS if q.double_quant else SINGLE_QUANT_BITS
        weight_bytes = base_linear * (0.5 + const_bits / 8)
    else:
        weight_bytes = base_linear + s["layers"] * sum(out for _, out in linears.values()) * 4  # int8 + fp32 row scales
    weight_bytes += (embed + norms) * c

    targets = _targets(s, lora.target_modules)
    if lora.target_modules != "all-linear":
        unknown = [m for m in lora.target_modules if m not in linears]
        if unknown:
            notes.append(f"not counted (not a Llama-style projection name): {', '.join(unknown)}")
    lora_params = s["layers"] * sum(lora.r * (linears[m][0] + linears[m][1]) for m in targets)
    opt_bytes = OPTIMIZER_BYTES.get(t.optimizer, 8)

    T = t.micro_batch_size * d.max_seq_len
    h = s["h"]
    attn_part, mlp_part = _layer_parts(s, targets)
    if t.gradient_checkpointing:
        # Inputs offloaded to host memory: the one replayed and the one on its way back. Long
        # micro-batches run the MLP in tiles of MLP_TILE_TOKENS (train/offload.py).
        tiled = T > 2 * MLP_TILE_TOKENS
        mlp_tokens = MLP_TILE_TOKENS if tiled else T
        grads = (6 + (TILED_EXTRA_H if tiled else 0)) * h
        act_bytes = 2 * T * h * c + (T * (attn_part + grads) + mlp_tokens * mlp_part) * c
    else:
        act_bytes = s["layers"] * T * (attn_part + mlp_part) * c
    act_bytes += max(a * b for a, b in linears.values()) * c  # one dequantized weight at a time
    logit_bytes = _loss_bytes(T, s, c)
    if not d.packing:
        notes.append("packing is off: sequences are padded, the figure assumes full max_seq_len batches")
    if getattr(t, "memory_budget_gib", "auto") != 0:
        notes.append(PLAN_NOTE)

    parts = {
        "weights_gib": weight_bytes / GIB,
        "lora_gib": lora_params * 8 / GIB,
        "optimizer_gib": lora_params * opt_bytes / GIB,
        "activations_gib": act_bytes / GIB,
        "logits_gib": logit_bytes / GIB,
        "overhead_gib": OVERHEAD_GIB,
    }
    # unrounded: a tiny test model is a few MiB, and displays round for themselves
    out: dict[str, Any] = dict(parts)
    out["total_gib"] = sum(parts.values())
    out["lora_params"] = lora_params
    out["base_params"] = base_linear + embed + norms
    out["tokens_per_step"] = tokens
    out["notes"] = notes
    return out
