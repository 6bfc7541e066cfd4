"""The memory estimator: its shape on a real 8B config, its monotonicity, and its parameter counts
checked against a real (tiny, random) Llama model quantized by bitsandbytes on the CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_studio.estimate import estimate_memory
from qlora_studio.recipe import recipe_from_dict, recipe_from_text

LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def _recipe(yaml_tail: str = "", base_model: str = "meta-llama/Meta-Llama-3-8B", recipe_dir: str | Path = "/tmp"):
    return recipe_from_text(f"base_model: {base_model}\ndata:\n  train: t.jsonl\n{yaml_tail}", recipe_dir)


def _total(yaml_tail: str) -> float:
    return estimate_memory(_recipe(yaml_tail), LLAMA3_8B)["total_gib"]


def test_llama3_8b_weights_and_lora_counts() -> None:
    tail = "lora:\n  r: 64\n  target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]\n"
    est = estimate_memory(_recipe(tail), LLAMA3_8B)
    assert 4 <= est["weights_gib"] <= 6
    assert est["base_params"] == 8_030_261_248  # the published parameter count of Llama-3-8B
    assert est["lora_params"] == 167_772_160  # r=64 on all seven projections
    assert est["total_gib"] == pytest.approx(sum(est[k] for k in (
        "weights_gib", "lora_gib", "optimizer_gib", "activations_gib", "logits_gib", "overhead_gib")), abs=1e-3)
    assert est["tokens_per_step"] == 1 * 2048 * 8


def _with(section: str, values: dict) -> float:
    d = {"base_model": "m", "data": {"train": "t.jsonl"}}
    d[section] = {**d.get(section, {}), **values}
    return estimate_memory(recipe_from_dict(d, "/tmp"), LLAMA3_8B)["total_gib"]


@pytest.mark.parametrize(
    ("section", "small", "large"),
    [
        ("lora", {"r": 8}, {"r": 64}),
        ("data", {"max_seq_len": 1024}, {"max_seq_len": 4096}),
        ("training", {"micro_batch_size": 1}, {"micro_batch_size": 4}),
        ("training", {"gradient_checkpointing": True}, {"gradient_checkpointing": False}),
        ("training", {"optimizer": "paged_adamw_8bit"}, {"optimizer": "adamw"}),
        ("quantization", {"double_quant": True}, {"double_quant": False}),
        ("lora", {"target_modules": ["q_proj", "v_proj"]}, {"target_modules": "all-linear"}),
    ],
    ids=["r", "seq", "batch", "checkpointing", "optimizer", "double_quant", "targets"],
)
def test_estimate_grows_with_each_knob(section: str, small: dict, large: dict) -> None:
    assert _with(section, small) < _with(section, large)


def test_checkpointing_cuts_activations_by_a_lot() -> None:
    on = estimate_memory(_recipe("training: {gradient_checkpointing: true}\n"), LLAMA3_8B)
    off = estimate_memory(_recipe("training: {gradient_checkpointing: false}\n"), LLAMA3_8B)
    assert off["activations_gib"] > 5 * on["activations_gib"]


def test_tokens_per_step() -> None:
    est = estimate_memory(_recipe("training: {micro_batch_size: 2, grad_accum: 4}\n"), LLAMA3_8B)
    assert est["tokens_per_step"] == 2 * 2048 * 4


def test_no_config_gives_none_figures_and_a_reason(tmp_path: Path) -> None:
    est = estimate_memory(_recipe(base_model="nobody-xyz/not-a-cached-model-4711"))
    assert est["total_gib"] is None and est["weights_gib"] is None
    assert "cache" in est["notes"][0]
    assert est["tokens_per_step"] == 2048 * 8
    (tmp_path / "empty-model").mkdir()
    est = estimate_memory(_recipe(base_model="./empty-model", recipe_dir=tmp_path))
    assert est["total_gib"] is None and "config.json" in est["notes"][0]
    est = estimate_memory(_recipe(), {"model_type": "mystery"})
    assert est["total_gib"] is None and "hidden_size" in est["notes"][0]


def test_unknown_target_module_names_are_noted() -> None:
    est = estimate_memory(_recipe("lora: {target_modules: [q_proj, c_attn]}\n"), LLAMA3_8B)
    assert any("c_attn" in n for n in est["notes"])


def test_counts_match_a_real_quantized_llama(tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=512, tie_word_embeddings=False)
    model_dir = tmp_path / "model"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    recipe = _recipe("lora: {r: 8}\nquantization: {compute_dtype: float32}\n", base_model="./model", recipe_dir=tmp_path)
    est = estimate_memory(recipe)  # reads model/config.json from disk
    assert est["base_params"] == sum(p.numel() for p in LlamaForCausalLM(config).parameters())

    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float32)
    quantized = LlamaForCausalLM.from_pretrained(model_dir, quantization_config=bnb, device_map="cpu")
    measured = 0
    for module in quantized.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None:
            measured += weight.numel() * weight.element_size() + state.absmax.numel() * state.absmax.element_size()
            if state.state2 is not None:
                measured += state.state2.absmax.numel() * state.state2.absmax.element_size()
        elif weight is not None:
            measured += weight.numel() * weight.element_size()
    estimated = est["weights_gib"] * 1024**3
    assert estimated == pytest.approx(measured, rel=0.02)

    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(quantized, lora)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert est["lora_params"] == trainable
    json.dumps(est)  # JSON-ready for the server's memory.estimate


def _vectors() -> list[dict]:
    path = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "recipes" / "estimates.json"
    return json.loads(path.read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", _vectors(), ids=lambda c: f"{c['recipe']}-{c['config']}")
def test_shared_vectors_still_match_python(case: dict) -> None:
    # the TypeScript estimator is checked against the same file, so the two cannot drift apart
    got = estimate_memory(recipe_from_text(case["text"], "/tmp"), case["model_config"])
    assert got == case["expected"]


def test_loss_counts_one_chunk_of_the_head_not_full_logits() -> None:
    """The engine's chunked loss (train/loss.py) holds one chunk of fp32 logits; only models that
    transform logits after the head (soft-capping) hold full logits, as the plain path does."""
    from qlora_studio.train.loss import _CHUNK_ELEMENTS, _LOGIT_TRANSFORMS

    from qlora_studio.estimate import memory

    assert memory.LOSS_CHUNK_ELEMENTS == _CHUNK_ELEMENTS  # the estimator and the engine agree
    assert memory.LOGIT_TRANSFORMS == _LOGIT_TRANSFORMS
    tail = "  max_seq_len: 8192\n"
    chunked = estimate_memory(_recipe(tail), LLAMA3_8B)["logits_gib"]
    rows = _CHUNK_ELEMENTS // LLAMA3_8B["vocab_size"]
    want = (2 * 8192 * 4096 * 2 + rows * LLAMA3_8B["vocab_size"] * (2 + 4)) / 1024**3
    assert chunked == pytest.approx(want)
    assert chunked < 1.0  # full fp32 logits and their log-softmax would be 7.8 GiB here
    capped = estimate_memory(_recipe(tail), {**LLAMA3_8B, "final_logit_softcapping": 30.0})["logits_gib"]
    assert capped == pytest.approx(8192 * LLAMA3_8B["vocab_size"] * (2 + 8) / 1024**3)


def test_checkpointed_activations_count_two_offloaded_inputs_and_mlp_tiles() -> None:
    """With checkpointing the layer inputs wait in host memory (train/offload.py): the figure grows by
    two inputs' worth per token, not one per layer, and past two MLP tiles the MLP part stops growing."""
    from qlora_studio.train.offload import MLP_TILE_TOKENS

    from qlora_studio.estimate import memory

    assert memory.MLP_TILE_TOKENS == MLP_TILE_TOKENS
    act = {n: estimate_memory(_recipe(f"  max_seq_len: {n}\n"), LLAMA3_8B)["activations_gib"] for n in (4096, 8192, 32768, 65536)}
    no_ckpt = estimate_memory(_recipe("  max_seq_len: 4096\ntraining: {gradient_checkpointing: false}\n"), LLAMA3_8B)
    assert no_ckpt["activations_gib"] > 16 * act[4096]  # every layer's activations against one layer's (+ 2 inputs)
    per_token_short = (act[8192] - act[4096]) / 4096
    per_token_long = (act[65536] - act[32768]) / 32768
    # MLP tiles: the MLP's 3i stops growing, the replayed layer's joined tile outputs and gradients
    # (measured, TILED_EXTRA_H) do not.
    assert per_token_long < per_token_short
    assert per_token_long * 1024 < 0.2  # GiB per 1k tokens at the 8B shape (32 layers x h would be 0.25 alone)


def test_long_sequences_match_the_measured_24gib_probes() -> None:
    """The 8B shape at micro batch 1 in a 24 GiB cap (bench/results/gpu.md, maxseq probes of one
    optimizer step, peak allocated): the estimate without its overhead term lands within 10%."""
    measured = {65536: 21.08, 73728: 22.89, 77824: 23.79}
    for tokens, gib in measured.items():
        tail = (f"  max_seq_len: {tokens}\ntraining: {{micro_batch_size: 1, grad_accum: 1}}\n"
                "lora: {r: 64, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}\n")
        est = estimate_memory(_recipe(tail), LLAMA3_8B)
        allocator = est["total_gib"] - est["overhead_gib"]
        assert abs(allocator - gib) / gib < 0.10, (tokens, allocator, gib)

