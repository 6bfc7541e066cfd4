#!/usr/bin/env python3
"""GPU benchmark: our engine against the seed recipe (TRL SFTTrainer), same model, same data.

Both paths train a randomly initialised Llama-shaped model (built from a config, no hub) on the
same synthetic chat data with NF4 double-quant base, bf16 compute, LoRA r=64 alpha=16 dropout 0.05
on q,k,v,o,gate,up,down, gradient checkpointing, paged_adamw_8bit, packing, seq 2048, the same
micro batch (packed rows of <= seq tokens) and grad accumulation, the same number of optimizer
steps. The first `warmup` steps are excluded from timing.

  (a) seed: transformers + peft + bitsandbytes + TRL SFTTrainer (SFTConfig(packing=True,
      max_length=seq, ...), TRL's defaults otherwise);
  (b) ours: qlora_studio.train.run_training on an equivalent recipe.

Each (model, path) runs in its own Python process, so each peak-memory figure
(torch.cuda.max_memory_allocated over the whole process: load, quantize, train) is that path's
alone. Throughput is real (non-padding) input tokens of the timed steps over their wall time,
with torch.cuda.synchronize() at each step boundary.

Usage (GPU machine; see bench/README.md for the wheels to bring):
    python bench/gpu_vs_seed.py                 # smoke + 1B (+ 8B while time allows)
    python bench/gpu_vs_seed.py --smoke         # tiny model only, both paths (CPU or GPU)
    python bench/gpu_vs_seed.py --sizes 1b      # one shape
Writes bench/results/gpu-vs-seed.json and .md (or --results DIR), logs under --work.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = {"r": 64, "alpha": 16, "dropout": 0.05}
LR = 2e-4

# Model shapes (random weights). vocab 128256 like Llama 3; the tokenizer is far smaller (the
# model's vocabulary may exceed the tokenizer's; unused rows cost the same either way).
SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=8192, tie_word_embeddings=True),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
}
# Per shape: data and schedule. tokens per optimizer step <= micro_batch * grad_accum * seq.
PLANS = {
    "tiny": dict(seq=256, n_conv=80, min_len=20, max_len=240, micro_batch=2, grad_accum=2, warmup=1, timed=3),
    "1b": dict(seq=2048, n_conv=3000, min_len=100, max_len=1500, micro_batch=4, grad_accum=2, warmup=5, timed=30),
    "8b": dict(seq=2048, n_conv=1000, min_len=100, max_len=1500, micro_batch=2, grad_accum=2, warmup=2, timed=8),
}

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<pad>", "[UNK]", "<s>", "<|im_start|>", "<|im_end|>"]
N_WORDS = 4000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------ data
def make_rows(n: int, min_len: int, max_len: int, seed: int = 7) -> list[dict]:
    """Chat rows whose ChatML rendering is min_len..max_len tokens (one token per word).

    Each turn costs 3 template tokens (<|im_start|>, role, <|im_end|>) plus its words.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        total = rng.randint(min_len, max_len)
        turns = rng.choice([2, 2, 4, 4, 6, 8])
        turns = max(2, min(turns, 2 * ((total // 3) // 8)))  # leave room for words in each turn
        words = total - 3 * turns
        # split `words` into `turns` positive parts, assistant turns about 3x longer
        weights = [rng.uniform(0.5, 1.5) * (3.0 if i % 2 else 1.0) for i in range(turns)]
        parts = [max(1, int(words * w / sum(weights))) for w in weights]
        parts[-1] = max(1, parts[-1] + words - sum(parts))
        msgs = []
        for i, k in enumerate(parts):
            text = " ".join(f"w{rng.randrange(N_WORDS)}" for _ in range(k))
            msgs.append({"role": "assistant" if i % 2 else "user", "content": text})
        rows.append({"messages": msgs})
    return rows


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for w in ["user", "assistant", "system"] + [f"w{i}" for i in range(N_WORDS)]:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>",
                                   pad_token="<pad>", unk_token="[UNK]",
                                   additional_special_tokens=["<|im_start|>"], model_max_length=1 << 20,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def child_build(spec: dict) -> dict:
    """Write model/ (random weights, bf16) with its tokenizer, and train.jsonl."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    work = Path(spec["work"])
    plan = PLANS[spec["shape"]]
    model_dir = work / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    fast = build_tokenizer()
    fast.save_pretrained(model_dir)
    cfg = LlamaConfig(**SHAPES[spec["shape"]], max_position_embeddings=8192, rms_norm_eps=1e-5,
                      rope_theta=500000.0, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id)
    assert cfg.vocab_size >= len(fast)
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.model.embed_tokens.weight.numel()
    model.save_pretrained(model_dir, max_shard_size="5GB")
    del model
    rows = make_rows(plan["n_conv"], plan["min_len"], plan["max_len"])
    with (work / "train.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    lens = [len(fast.apply_chat_template(r["messages"], tokenize=False).split()) for r in rows[:200]]
    return {"params": n_params, "params_non_embedding": n_params - n_embed, "rows": len(rows),
            "approx_tokens_per_row_first200": sum(lens) / len(lens)}


def read_rows(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "train.jsonl").read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------ timing
def summarize(steps: list[tuple[int, float, int]], warmup: int, timed: int) -> dict:
    """steps: (step, time at its end, real tokens in it). Timed window: steps warmup+1..warmup+timed."""
    by = {s: (t, n) for s, t, n in steps}
    last = warmup + timed
    if warmup not in by or last not in by:
        raise RuntimeError(f"missing step marks: have {sorted(by)[:5]}..{sorted(by)[-5:]}, need {warmup} and {last}")
    dt = by[last][0] - by[warmup][0]
    tokens = sum(by[s][1] for s in range(warmup + 1, last + 1))
    per_step = [by[s][0] - by[s - 1][0] for s in range(warmup + 1, last + 1) if s - 1 in by]
    per_step_tokens = [by[s][1] for s in range(warmup + 1, last + 1)]
    return {"timed_steps": timed, "timed_s": dt, "timed_tokens": tokens, "tokens_per_s": tokens / dt,
            "step_s": [round(x, 4) for x in per_step], "step_tokens": per_step_tokens,
            "warmup_step_s": [round(by[s][0] - by[s - 1][0], 4) for s in range(2, warmup + 1) if s - 1 in by]}


def mem_figures() -> dict:
    import torch

    if not torch.cuda.is_available():
        import resource

        return {"peak_allocated_gib": None, "peak_reserved_gib": None,
                "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    return {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------ (a) seed
def plan_of(spec: dict) -> dict:
    return {**PLANS[spec["shape"]], **spec.get("plan_override", {})}


def dtype_probe(model, into: dict) -> None:
    """Record the dtypes the forward really runs in: lm_head/norm weights, a decoder layer's output."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    into["lm_head_weight_dtype"] = str(base.lm_head.weight.dtype)
    into["norm_weight_dtype"] = str(base.model.norm.weight.dtype)
    into["embed_weight_dtype"] = str(base.model.embed_tokens.weight.dtype)

    def hook(_m, _inp, out):
        t = out[0] if isinstance(out, tuple) else out
        into.setdefault("layer0_output_dtype", str(t.dtype))

    def hook_attn(_m, inp, _out):
        if inp:
            into.setdefault("attn_o_proj_input_dtype", str(inp[0].dtype))

    base.model.layers[0].register_forward_hook(hook)
    base.model.layers[0].self_attn.o_proj.register_forward_hook(hook_attn)


def seed_kbit_prep(model):
    """Diagnostic: what our engine does before LoRA (peft's prepare_model_for_kbit_training)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                           gradient_checkpointing_kwargs={"use_reentrant": False})


def patch_prepare_without_upcast() -> None:
    """Diagnostic: peft's prepare_model_for_kbit_training minus its cast of every non-4-bit weight to fp32."""
    import peft

    def prepare(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs=None, **_kw):
        for prm in model.parameters():
            prm.requires_grad = False
        kw = gradient_checkpointing_kwargs or {}
        if use_gradient_checkpointing:
            if kw.get("use_reentrant", True):
                model.enable_input_require_grads()
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
        return model

    peft.prepare_model_for_kbit_training = prepare


def child_seed(spec: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    work, plan = Path(spec["work"]), plan_of(spec)
    cuda = torch.cuda.is_available()
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(work / "model")
    ds = Dataset.from_list(read_rows(work))
    cdtype = torch.bfloat16 if cuda else torch.float32
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=cdtype)
    model = AutoModelForCausalLM.from_pretrained(work / "model", quantization_config=bnb, dtype=cdtype,
                                                 device_map={"": 0} if cuda else {"": "cpu"})
    if spec.get("kbit_prep"):
        model = seed_kbit_prep(model)
    load_s = time.perf_counter() - t0
    lcfg = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=spec.get("dropout", LORA["dropout"]),
                      target_modules=TARGETS, bias="none", task_type="CAUSAL_LM")
    steps = plan["warmup"] + plan["timed"]
    args = SFTConfig(
        output_dir=str(work / "seed-out"), max_length=plan["seq"], packing=True,
        per_device_train_batch_size=plan["micro_batch"], gradient_accumulation_steps=plan["grad_accum"],
        gradient_checkpointing=True, optim="paged_adamw_8bit" if cuda else "adamw_torch",
        bf16=cuda, learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=2, max_steps=steps,
        max_grad_norm=1.0, weight_decay=0.0, logging_steps=1, save_strategy="no", report_to="none",
        seed=42, use_cpu=not cuda, disable_tqdm=True, use_liger_kernel=bool(spec.get("liger")))
    marks: list[tuple[int, float, int]] = []
    pending = [0]

    class Seed(SFTTrainer):
        def training_step(self, model, inputs, *a, **kw):  # count real tokens of each micro-batch
            if "attention_mask" in inputs:
                pending[0] += int(inputs["attention_mask"].sum())
            else:
                pending[0] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, *a, **kw)

    class Marks(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            sync()
            marks.append((0, time.perf_counter(), 0))

        def on_step_end(self, args, state, control, **kw):
            sync()
            marks.append((state.global_step, time.perf_counter(), pending[0]))
            pending[0] = 0

    trainer = Seed(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=lcfg,
                   callbacks=[Marks()])
    setup_s = time.perf_counter() - t0
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    probe: dict = {}
    dtype_probe(trainer.model, probe)
    pad_free = bool(getattr(trainer, "padding_free", False))
    out = trainer.train()
    res = summarize(marks, plan["warmup"], plan["timed"])
    res.update(mem_figures())
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    res.update({"dtypes": probe, "load_s": load_s, "setup_s": setup_s, "trainable_params": trainable, "padding_free": pad_free,
                "loss_type": getattr(args, "loss_type", None), "losses_logged": losses,
                "train_runtime_s": out.metrics.get("train_runtime"), "steps_done": trainer.state.global_step,
                "attn_implementation": model.config._attn_implementation,
                "dataset_tokens_after_packing": int(sum(len(x) for x in trainer.train_dataset["input_ids"]))})
    return res


# ------------------------------------------------------------------------------------ (b) ours
RECIPE = """\
base_model: {model}
quantization:
  bits: 4
  quant_type: nf4
  double_quant: true
  compute_dtype: auto
lora:
  r: {r}
  alpha: {alpha}
  dropout: {dropout}
  target_modules: [{targets}]
data:
  train: {train}
  format: chat
  chat_template: tokenizer
  train_on: all
  max_seq_len: {seq}
  packing: true
training:
  max_steps: {steps}
  micro_batch_size: {mb}
  grad_accum: {ga}
  lr: {lr}
  scheduler: cosine
  warmup_steps: 2
  optimizer: paged_adamw_8bit
  max_grad_norm: 1.0
  gradient_checkpointing: {ckpt}
  memory_budget_gib: {budget}
  seed: 42
  log_every: 1
  eval_every: 0
  save_every: 0
output:
  dir: {runs}
  run_name: bench
"""


def child_ours(spec: dict) -> dict:
    import torch

    from qlora_studio.train import run_training

    work, plan = Path(spec["work"]), plan_of(spec)
    steps = plan["warmup"] + plan["timed"]
    if spec.get("no_upcast"):
        patch_prepare_without_upcast()
    import peft

    probe: dict = {}
    real_get_peft_model = peft.get_peft_model

    def get_peft_model(model, *a, **kw):  # the engine imports it from peft at setup time
        pm = real_get_peft_model(model, *a, **kw)
        dtype_probe(pm, probe)
        return pm

    peft.get_peft_model = get_peft_model
    rdir = Path(tempfile.mkdtemp(prefix="ours-recipe-", dir=work))
    recipe = rdir / "bench.qlora.yaml"
    recipe.write_text(RECIPE.format(model=work / "model", r=LORA["r"], alpha=LORA["alpha"],
                                    dropout=spec.get("dropout", LORA["dropout"]), targets=", ".join(TARGETS),
                                    ckpt="true" if spec.get("ckpt", True) else "false",
                                    train=work / "train.jsonl", seq=plan["seq"], steps=steps,
                                    mb=plan["micro_batch"], ga=plan["grad_accum"], lr=LR, runs=rdir / "runs",
                                    budget=spec.get("budget", "auto"))
                      + spec.get("recipe_extra", ""))
    if spec.get("fraction_gib"):  # a smaller card: the allocator refuses past this many GiB
        torch.cuda.set_per_process_memory_fraction(spec["fraction_gib"] * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    marks: list[tuple[int, float, int]] = []
    metrics: list[dict] = []
    logs: list[str] = []
    t0 = time.perf_counter()
    first: list[float] = []
    prev_seen = [0]

    prof = None
    if spec.get("profile"):
        from torch.profiler import ProfilerActivity, profile, schedule

        prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
                       schedule=schedule(wait=max(0, plan["warmup"] - 1), warmup=1, active=2, repeat=1))
        prof.__enter__()

    def on_event(ev: dict) -> None:
        d = ev["data"]
        if ev["type"] == "metrics":
            if prof is not None:
                prof.step()
            sync()
            now = time.perf_counter()
            marks.append((int(d["step"]), now, int(d["tokens_seen"]) - prev_seen[0]))
            prev_seen[0] = int(d["tokens_seen"])
            metrics.append(d)
        elif ev["type"] == "status" and d.get("state") == "running":
            sync()
            first.append(time.perf_counter())
            marks.append((0, first[0], 0))
        elif ev["type"] == "log":
            logs.append(d.get("message", "")[:400])

    run_dir = run_training(recipe, on_event=on_event)
    profile_tables = None
    if prof is not None:
        prof.__exit__(None, None, None)
        ka = prof.key_averages()
        profile_tables = {"by_cuda": ka.table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=60),
                          "by_cpu": ka.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60)}
    from qlora_studio.train import attention as _attention

    res = summarize(marks, plan["warmup"], plan["timed"])
    res["profile"] = profile_tables
    res["segment_lookups"] = dict(_attention.STATS)
    res.update(mem_figures())
    timed = [m for m in metrics if plan["warmup"] < m["step"] <= steps]
    tps = sorted(m["tokens_per_s"] for m in timed)
    res.update({
        "setup_s": (first[0] - t0) if first else None, "steps_done": metrics[-1]["step"] if metrics else 0,
        "engine_tokens_per_s_median": tps[len(tps) // 2] if tps else None,
        "engine_mem_peak_mb_last": metrics[-1].get("mem_peak_mb") if metrics else None,
        "losses": [round(m["loss"], 4) for m in metrics], "logs": logs, "dtypes": probe, "run_dir": str(run_dir),
        "dataset_tokens_seen": metrics[-1]["tokens_seen"] if metrics else None,
    })
    return res


# ------------------------------------------------------------------------------------ driver
def run_child(mode: str, spec: dict, logf: Path, timeout: float) -> dict:
    spec_path = Path(spec["work"]) / f"{mode}.spec.json"
    out_path = Path(spec["work"]) / f"{mode}.result.json"
    if out_path.exists():
        out_path.unlink()
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(spec_path)]
    t = time.perf_counter()
    with logf.open("a") as lf:
        lf.write(f"\n===== {spec['shape']} {mode} =====\n")
        lf.flush()
        proc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, timeout=timeout)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not out_path.exists():
        tail = logf.read_text()[-3000:]
        raise RuntimeError(f"{spec['shape']} {mode} failed (exit {proc.returncode}); log tail:\n{tail}")
    res = json.loads(out_path.read_text())
    res["process_wall_s"] = wall
    return res


def child_main(mode: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    os.environ.update(spec.get("env", {}))
    fn = {"build": child_build, "seed": child_seed, "ours": child_ours}[mode.split("-")[0]]
    res = fn(spec)
    Path(spec["out"]).write_text(json.dumps(res, indent=1))


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "bitsandbytes", "trl", "accelerate", "datasets", "tokenizers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    info = {"host_cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
        if q.returncode == 0 and q.stdout.strip():
            name, driver, mem = [x.strip() for x in q.stdout.strip().splitlines()[0].split(",")]
            info.update({"gpu": name, "driver": driver, "gpu_memory": mem})
    except (OSError, subprocess.TimeoutExpired):
        info["gpu"] = None
    return info


def compare(shape: str, build: dict, seed: dict, ours: dict) -> dict:
    plan = PLANS[shape]
    n4 = 4 * build["params_non_embedding"]
    fig = {
        "shape": shape, "plan": plan, "model_params": build["params"],
        "baseline_tokens_per_s": seed["tokens_per_s"], "ours_tokens_per_s": ours["tokens_per_s"],
        "speedup": ours["tokens_per_s"] / seed["tokens_per_s"],
        "baseline_peak_gib": seed["peak_allocated_gib"], "ours_peak_gib": ours["peak_allocated_gib"],
        "baseline_peak_reserved_gib": seed.get("peak_reserved_gib"), "ours_peak_reserved_gib": ours.get("peak_reserved_gib"),
        "baseline_4N_tflops": n4 * seed["tokens_per_s"] / 1e12, "ours_4N_tflops": n4 * ours["tokens_per_s"] / 1e12,
    }
    if seed["peak_allocated_gib"] and ours["peak_allocated_gib"]:
        fig["memory_ratio"] = ours["peak_allocated_gib"] / seed["peak_allocated_gib"]
    else:
        fig["memory_ratio"] = None
    fig["baseline"], fig["ours"], fig["build"] = seed, ours, build
    return fig


def write_results(results_dir: Path, doc: dict) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "gpu-vs-seed.json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = ["# GPU: ours vs the seed recipe", "",
             f"Date: {doc['date']}  ", f"Command: `{doc['command']}`  ",
             f"Machine: {doc['machine'].get('gpu')} (driver {doc['machine'].get('driver')}), "
             f"{doc['machine'].get('cpu_count')} CPUs  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()), "",
             "Seed = transformers + peft + bitsandbytes + TRL SFTTrainer (packing, TRL defaults otherwise); "
             "ours = `qlora_studio.train.run_training`. Both: NF4 double quant, bf16 compute, LoRA r=64 "
             "alpha=16 dropout=0.05 on q,k,v,o,gate,up,down, gradient checkpointing, paged_adamw_8bit, packing, "
             "random-weight model built from a config, synthetic chat data. tokens/s = real (non-padding) input "
             "tokens of the timed steps / their wall time (warm-up steps excluded); peak = "
             "torch.cuda.max_memory_allocated of the process (load + train).", ""]
    for key, fig in doc["runs"].items():
        p = fig["plan"]
        title = f"{key} (smoke: a check that both paths run, not a benchmark)" if key == "tiny" else \
            f"{key}: Llama-3.2-1B shape" if key == "1b" else f"{key}: Llama-3-8B shape" if key == "8b" else key
        lines += [f"## {title}", "",
                  f"seq {p['seq']}, micro batch {p['micro_batch']} packed rows, grad accum {p['grad_accum']}, "
                  f"{p['warmup']} warm-up + {p['timed']} timed optimizer steps, {p['n_conv']} conversations of "
                  f"{p['min_len']}-{p['max_len']} tokens; model {fig['model_params'] / 1e9:.2f} B parameters.", "",
                  "| figure | seed (TRL) | ours | ours / seed |", "|---|---|---|---|",
                  f"| tokens/s (real) | {fig['baseline_tokens_per_s']:,.0f} | {fig['ours_tokens_per_s']:,.0f} | "
                  f"{fig['speedup']:.3f} |"]
        if fig["baseline_peak_gib"]:
            lines += [f"| peak allocated GiB | {fig['baseline_peak_gib']:.2f} | {fig['ours_peak_gib']:.2f} | "
                      f"{fig['memory_ratio']:.3f} |",
                      f"| peak reserved GiB | {fig['baseline_peak_reserved_gib']:.2f} | "
                      f"{fig['ours_peak_reserved_gib']:.2f} | "
                      f"{fig['ours_peak_reserved_gib'] / fig['baseline_peak_reserved_gib']:.3f} |"]
        lines += [f"| 4N TFLOP/s (non-embedding N) | {fig['baseline_4N_tflops']:.1f} | {fig['ours_4N_tflops']:.1f} | |",
                  f"| timed tokens | {fig['baseline']['timed_tokens']:,} | {fig['ours']['timed_tokens']:,} | |",
                  f"| median step s | {_median(fig['baseline']['step_s']):.3f} | {_median(fig['ours']['step_s']):.3f} | |",
                  ""]
    diag = doc.get("diagnostics") or {}
    for key, runs in diag.get("runs", {}).items():
        for mode, r in runs.items():
            if mode == "build":
                continue
            p = r["plan"]
            what = {"ours-noupcast": "our engine with peft's prepare_model_for_kbit_training replaced by the same "
                                     "steps minus its cast of every non-4-bit weight to fp32 (bench-only patch)",
                    "seed-kbitprep": "the seed recipe with prepare_model_for_kbit_training applied first"}.get(mode, mode)
            lines += [f"## Diagnostic {key} {mode}", "", f"{what}; {p['warmup']} warm-up + {p['timed']} timed steps, "
                      "otherwise as above.", "",
                      f"- tokens/s (real): {r['tokens_per_s']:,.0f} (median of per-step engine figures: "
                      f"{r.get('engine_tokens_per_s_median') or float('nan'):,.0f})",
                      f"- peak allocated GiB: {r['peak_allocated_gib']:.2f}; reserved {r['peak_reserved_gib']:.2f}",
                      f"- step s: {r['step_s']}", f"- dtypes: {r.get('dtypes')}", ""]
    dtypes = {f"{k} {side}": fig[side].get("dtypes") for k, fig in doc["runs"].items()
              for side in ("baseline", "ours") if fig[side].get("dtypes")}
    if dtypes:
        lines += ["## Dtypes seen in the forward (hooks on layer 0)", ""] + [f"- {k}: {v}" for k, v in dtypes.items()] + [""]
    if doc.get("notes"):
        lines += ["## Notes", ""] + [f"- {x}" for x in doc["notes"]] + [""]
    if doc.get("not_measured"):
        lines += ["## Not measured", ""] + [f"- {x}" for x in doc["not_measured"]] + [""]
    (results_dir / "gpu-vs-seed.md").write_text("\n".join(lines))


def diagnose(a, work: Path, logf: Path, start: float) -> int:
    """Where our engine's time and memory go: the same runs with and without peft's fp32 upcast."""
    doc = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": os.environ.get("BENCH_COMMAND") or " ".join(["python"] + sys.argv),
           "machine": machine(), "versions": versions(), "runs": {}, "not_measured": [], "errors": {}}
    variants = [("ours-noupcast", {"no_upcast": True}, {"warmup": 3, "timed": 12}, 90),
                ("seed-kbitprep", {"kbit_prep": True}, {"warmup": 2, "timed": 8}, 80)]
    out = Path(a.results)
    out.mkdir(parents=True, exist_ok=True)
    for shape in [x for x in a.sizes.split(",") if x]:
        swork = work / shape
        swork.mkdir(parents=True, exist_ok=True)
        spec = {"work": str(swork), "shape": shape}
        try:
            log(f"{shape}: building model + data")
            build = run_child("build", spec, logf, 600)
            doc["runs"][shape] = {"build": build}
            for mode, flags, override, est in variants:
                elapsed = time.perf_counter() - start
                if elapsed + est > a.budget_s:
                    doc["not_measured"].append(f"{shape} {mode}: skipped at {elapsed:.0f} s (budget {a.budget_s:.0f} s)")
                    log(doc["not_measured"][-1])
                    continue
                res = run_child(mode, {**spec, **flags, "plan_override": override}, logf, 600)
                res["plan"] = {**PLANS[shape], **override}
                doc["runs"][shape][mode] = res
                log(f"{shape} {mode}: {res['tokens_per_s']:,.0f} tok/s, peak {res['peak_allocated_gib']} GiB, "
                    f"dtypes {res.get('dtypes')}")
                (out / "gpu-vs-seed-diag.json").write_text(json.dumps(doc, indent=1) + "\n")
        except Exception as err:
            doc["errors"][shape] = str(err)[-3000:]
            log(f"{shape}: FAILED: {str(err)[-3000:]}")
    doc["total_wall_s"] = time.perf_counter() - start
    (out / "gpu-vs-seed-diag.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if doc["errors"] else 0


def merge(paths: list[str], results: Path, notes: list[str] | None = None) -> int:
    """One results file from several invocations: the first comparison file is the base."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    base = next(d for d in docs if "headline" in d)
    base["command"] = [base["command"]]
    for d in docs:
        if d is base:
            continue
        base["command"].append(d["command"])
        base["not_measured"] = [x for x in base.get("not_measured", [])
                                if not any(x.startswith(k + ":") for k in d.get("runs", {}))]
        if "headline" in d:
            base["runs"].update(d["runs"])
        else:
            base["diagnostics"] = d
        base["not_measured"] += d.get("not_measured", [])
        base["errors"].update(d.get("errors", {}))
    head = base["runs"].get("1b") and "1b" or base["headline"]
    base["headline"] = head
    for k in ("baseline_tokens_per_s", "ours_tokens_per_s", "speedup", "baseline_peak_gib", "ours_peak_gib",
              "memory_ratio"):
        base[k] = base["runs"][head][k]
    base["command"] = " && ".join(base["command"])
    base["notes"] = list(notes or [])
    write_results(results, base)
    return 0


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny model only (both paths), results under --work")
    ap.add_argument("--sizes", default="1b,8b", help="comma list of shapes after the smoke: 1b, 8b")
    ap.add_argument("--no-smoke", action="store_true", help="skip the tiny smoke before the full runs")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "gpu-vs-seed"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--log", help="the child processes' output (default: WORK/gpu-vs-seed.log)")
    ap.add_argument("--budget-s", type=float, default=540.0,
                    help="start a shape only if the elapsed time plus its estimate fits in this")
    ap.add_argument("--diagnose", action="store_true",
                    help="instead of the comparison: on --sizes, (1) our engine with peft's fp32 upcast skipped, "
                         "(2) the seed recipe with the upcast added; writes gpu-vs-seed-diag.json")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="merge result files of several invocations (runs and diagnostics) into --results")
    ap.add_argument("--note", action="append", default=[], help="with --merge: a note for the .md (repeatable)")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(*a.child)
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    src = str(ROOT / "python-backend" / "src")
    if src not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (os.environ.get("PYTHONPATH"), src) if x)
    start = time.perf_counter()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    logf = Path(a.log) if a.log else work / "gpu-vs-seed.log"
    if a.diagnose:
        return diagnose(a, work, logf, start)
    if a.merge:
        return merge(a.merge, Path(a.results), a.note)
    shapes = ["tiny"] if a.smoke else ([] if a.no_smoke else ["tiny"]) + [s for s in a.sizes.split(",") if s]
    estimate = {"tiny": 60, "1b": 200, "8b": 200}
    doc = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": os.environ.get("BENCH_COMMAND") or " ".join(["python"] + sys.argv),
           "machine": machine(), "versions": versions(), "runs": {}, "not_measured": [], "errors": {}}
    for shape in shapes:
        elapsed = time.perf_counter() - start
        if elapsed + estimate[shape] > a.budget_s:
            doc["not_measured"].append(f"{shape}: skipped, {elapsed:.0f} s elapsed and about {estimate[shape]} s "
                                       f"more needed (budget {a.budget_s:.0f} s)")
            log(doc["not_measured"][-1])
            continue
        swork = work / shape
        swork.mkdir(parents=True, exist_ok=True)
        spec = {"work": str(swork), "shape": shape}
        try:
            log(f"{shape}: building model + data")
            build = run_child("build", spec, logf, 600)
            log(f"{shape}: built {build['params'] / 1e9:.3f} B params in {build['process_wall_s']:.0f} s; seed run")
            seed = run_child("seed", spec, logf, 600)
            log(f"{shape}: seed {seed['tokens_per_s']:,.0f} tok/s, peak {seed['peak_allocated_gib']} GiB "
                f"({seed['process_wall_s']:.0f} s); ours run")
            ours = run_child("ours", spec, logf, 600)
            log(f"{shape}: ours {ours['tokens_per_s']:,.0f} tok/s, peak {ours['peak_allocated_gib']} GiB "
                f"({ours['process_wall_s']:.0f} s)")
        except Exception as err:  # keep what was measured; report the failure
            doc["errors"][shape] = str(err)[-3000:]
            log(f"{shape}: FAILED: {str(err)[-3000:]}")
            doc["not_measured"] += [f"{s}: not run, {shape} failed first" for s in shapes[shapes.index(shape) + 1:]]
            break  # a failure here (engine or seed path) would repeat on the larger shapes
        fig = compare(shape, build, seed, ours)
        doc["runs"][shape] = fig
        if shape != "tiny" or "headline" not in doc:
            doc["headline"] = doc.get("headline") if doc.get("headline") not in (None, "tiny") else shape
        # incremental: a later shape that runs out of time keeps this one
        out_dir = work if shape == "tiny" and a.smoke else Path(a.results)
        head = doc["runs"][doc["headline"]]
        for k in ("baseline_tokens_per_s", "ours_tokens_per_s", "speedup", "baseline_peak_gib", "ours_peak_gib",
                  "memory_ratio"):
            doc[k] = head[k]
        write_results(out_dir, doc)
        print(f"{shape}: seed {fig['baseline_tokens_per_s']:,.0f} tok/s vs ours {fig['ours_tokens_per_s']:,.0f} "
              f"(x{fig['speedup']:.3f}); peak GiB seed {fig['baseline_peak_gib']} vs ours {fig['ours_peak_gib']} "
              f"(ratio {fig['memory_ratio']})", flush=True)
    doc["total_wall_s"] = time.perf_counter() - start
    out_dir = work if a.smoke else Path(a.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    if doc["runs"]:
        write_results(out_dir, doc)
    else:
        (out_dir / "gpu-vs-seed.json").write_text(json.dumps(doc, indent=1) + "\n")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
