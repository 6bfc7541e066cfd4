#!/usr/bin/env python3
"""GPU benchmark: seed recipe, TRL + Liger, Unsloth and our engine on one shape, in one invocation.

Same random-weight Llama shape, same synthetic chat data, same tokens per optimizer step for every
path (model, data and the seed/ours children come from bench/gpu_vs_seed.py). Each path runs in
its own process: warm-up steps, then `windows` consecutive timed windows; tokens/s is reported
per window with the median and the spread (min..max), plus the mean loss of the last 5 steps.

Besides the side-by-side run, per shape (each optional):
  maxseq:PATH      longest sequence that trains at micro batch 1 inside a 24 GiB budget
                   (torch.cuda.set_per_process_memory_fraction), by bisection on multiples of 1024,
                   one optimizer step per probe after a warm step, the model loaded once per path;
  estimator        our engine's measured peaks against estimate_memory for seq 512/2048 x
                   gradient checkpointing on/off;
  ddp              our engine on 2 GPUs (qlora-studio run --gpus 2) against the ours path's figure on
                   1 GPU (the same engine metric), same per-GPU work.

Usage on the GPU machine (wheels as bench/README.md says):
    python bench/gpu_bench.py --shape 1b --tasks ours,seed,ddp,unsloth,liger,estimator --results $OUT
    python bench/gpu_bench.py --shape 8b --tasks ours,seed,unsloth,maxseq:ours --results $OUT
    python bench/gpu_bench.py --shape tiny --tasks ours,ours_dropout0,ddp     # CPU smoke
    python bench/gpu_bench.py --merge A.json B.json --results bench/results   # gpu.json + gpu.md
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_vs_seed as gvs  # noqa: E402

PEAK_TFLOPS = 790.0  # measured bf16 matmul rate of one H200 (shared/facts/gpu.md)
BUDGET_GIB = 24
TIMING = {"tiny": dict(warmup=1, windows=2, window=2), "1b": dict(warmup=4, windows=2, window=10),
          "8b": dict(warmup=3, windows=2, window=8)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------ children
def child_unsloth(spec: dict) -> dict:
    """Unsloth's documented QLoRA recipe: dropout 0, offloaded checkpointing, its SFTTrainer."""
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    import unsloth  # noqa: F401  (first: it patches transformers and trl)
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastLanguageModel

    work, plan = Path(spec["work"]), gvs.plan_of(spec)
    t0 = time.perf_counter()
    model, tok = FastLanguageModel.from_pretrained(model_name=str(work / "model"), max_seq_length=plan["seq"],
                                                   dtype=torch.bfloat16, load_in_4bit=True)
    model = FastLanguageModel.get_peft_model(model, r=gvs.LORA["r"], lora_alpha=gvs.LORA["alpha"], lora_dropout=0,
                                             target_modules=gvs.TARGETS, bias="none",
                                             use_gradient_checkpointing="unsloth", random_state=42)
    steps = plan["warmup"] + plan["timed"]
    args = SFTConfig(output_dir=str(work / "unsloth-out"), max_length=plan["seq"], packing=True,
                     per_device_train_batch_size=plan["micro_batch"], gradient_accumulation_steps=plan["grad_accum"],
                     optim="paged_adamw_8bit", bf16=True, learning_rate=gvs.LR, lr_scheduler_type="cosine",
                     warmup_steps=2, max_steps=steps, max_grad_norm=1.0, weight_decay=0.0, logging_steps=1,
                     save_strategy="no", report_to="none", seed=42, disable_tqdm=True)
    marks: list[tuple[int, float, int]] = []
    pending = [0]

    class Marks(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            gvs.sync()
            marks.append((0, time.perf_counter(), 0))

        def on_step_end(self, args, state, control, **kw):
            gvs.sync()
            marks.append((state.global_step, time.perf_counter(), pending[0]))
            pending[0] = 0

    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(gvs.read_rows(work)),
                         processing_class=tok, callbacks=[Marks()])
    real_step = trainer.training_step

    def counting_step(model_, inputs, *a, **kw):
        mask = inputs.get("attention_mask")
        pending[0] += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        return real_step(model_, inputs, *a, **kw)

    trainer.training_step = counting_step
    setup_s = time.perf_counter() - t0
    trainer.train()
    res = gvs.summarize(marks, plan["warmup"], plan["timed"])
    res.update(gvs.mem_figures())
    res.update({"setup_s": setup_s, "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
                "steps_done": trainer.state.global_step})
    return res


def _ours_run(spec: dict, seq: int, ckpt: bool = True, mb: int = 1, ga: int = 1):
    """A QLoRARun set up (model, adapters, optimizer) on the bench data, for in-process probes."""
    from qlora_studio.train.qlora import QLoRARun

    work = Path(spec["work"])
    rdir = Path(tempfile.mkdtemp(prefix="ours-probe-", dir=work))
    recipe = rdir / "probe.qlora.yaml"
    recipe.write_text(gvs.RECIPE.format(model=work / "model", r=gvs.LORA["r"], alpha=gvs.LORA["alpha"],
                                        dropout=spec.get("dropout", gvs.LORA["dropout"]), targets=", ".join(gvs.TARGETS),
                                        ckpt="true" if ckpt else "false", train=work / "train.jsonl", seq=seq,
                                        steps=1000, mb=mb, ga=ga, lr=gvs.LR, runs=rdir / "runs", budget=0))
    run = QLoRARun(recipe, output_dir=None, max_steps=None, run_id=None, resume=False, on_event=None)
    run.open_run_dir()
    run.setup()
    run.model.train()
    return run


def _probe_step_ours(run, n: int) -> None:
    import torch

    from qlora_studio.train.batches import MicroBatch

    g = torch.Generator().manual_seed(n)
    ids = torch.randint(10, 4000, (1, n), generator=g)
    mb = MicroBatch(ids, ids.clone(), torch.arange(n)[None], None, n, n - 1)
    (run._loss_sum(mb) / (n - 1)).backward()
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)


def _probe_step_hf(model, opt, n: int) -> None:
    import torch

    g = torch.Generator().manual_seed(n)
    ids = torch.randint(10, 4000, (1, n), generator=g).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(input_ids=ids, labels=ids, position_ids=torch.arange(n, device="cuda")[None])
    out.loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def child_maxseq(spec: dict) -> dict:
    """Bisection for the longest trainable sequence of one path inside BUDGET_GIB."""
    path = spec["path"]
    if path == "unsloth":
        os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
        import unsloth  # noqa: F401
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(BUDGET_GIB * 2**30 / total)
    work = Path(spec["work"])
    if path == "ours":
        run = _ours_run(spec, seq=spec["hi"])
        step = lambda n: _probe_step_ours(run, n)  # noqa: E731
    else:
        import bitsandbytes.optim as bo

        if path == "unsloth":
            from unsloth import FastLanguageModel

            model, _ = FastLanguageModel.from_pretrained(model_name=str(work / "model"), max_seq_length=spec["hi"],
                                                         dtype=torch.bfloat16, load_in_4bit=True)
            model = FastLanguageModel.get_peft_model(model, r=gvs.LORA["r"], lora_alpha=gvs.LORA["alpha"],
                                                     lora_dropout=0, target_modules=gvs.TARGETS, bias="none",
                                                     use_gradient_checkpointing="unsloth", random_state=42)
        else:  # the seed recipe's model: peft's k-bit preparation, LoRA, checkpointing
            from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
            from transformers import AutoModelForCausalLM, BitsAndBytesConfig

            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(work / "model", quantization_config=bnb,
                                                         dtype=torch.bfloat16, device_map={"": 0})
            model = prepare_model_for_kbit_training(model, gradient_checkpointing_kwargs={"use_reentrant": False})
            model = get_peft_model(model, LoraConfig(r=gvs.LORA["r"], lora_alpha=gvs.LORA["alpha"],
                                                     lora_dropout=gvs.LORA["dropout"], target_modules=gvs.TARGETS,
                                                     task_type="CAUSAL_LM"))
        model.train()
        opt = bo.PagedAdamW8bit([p for p in model.parameters() if p.requires_grad], lr=gvs.LR)
        step = lambda n: _probe_step_hf(model, opt, n)  # noqa: E731
    step(512)  # optimizer state exists before the first probe
    probes: list[dict] = []
    lo, hi = 0, spec["hi"] // 1024 + 1  # in units of 1024: lo passes, hi fails (or is beyond the cap)
    start = spec.get("first", 16384) // 1024
    deadline = time.perf_counter() + spec.get("budget_s", 150)
    guess = start
    while hi - lo > 1 and time.perf_counter() < deadline:
        n = guess * 1024
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        try:
            step(n)
            ok, err = True, None
        except torch.OutOfMemoryError as e:
            ok, err = False, str(e).splitlines()[0][:200]
        gc.collect()
        torch.cuda.empty_cache()
        probes.append({"tokens": n, "ok": ok, "s": round(time.perf_counter() - t, 2),
                       "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "error": err})
        if ok:
            lo = guess
        else:
            hi = guess
        guess = (lo + hi) // 2 if hi <= spec["hi"] // 1024 else min(spec["hi"] // 1024, lo * 2)
        if guess == lo:
            break
    return {"path": path, "max_seq": lo * 1024, "first_failure": hi * 1024 if hi <= spec["hi"] // 1024 else None,
            "cap": spec["hi"], "probes": probes, "converged": hi - lo <= 1}


def _ablate_steps(run, batches: list, start: int, n: int, prof=None) -> tuple[list, list, int]:
    """n optimizer steps of the engine's loop (loss over the step's trained tokens, clip, step)."""
    import torch

    ga = run.recipe.training.grad_accum
    times, losses = [], []
    for _ in range(n):
        gvs.sync()
        t = time.perf_counter()
        micro = [batches[(start + j) % len(batches)] for j in range(ga)]
        start += ga
        n_trained = max(1, sum(mb.n_trained for mb in micro))
        sums = []
        for mb in micro:  # as the engine's loop: no host read of the loss until the step is queued
            loss = run._loss_sum(mb)
            (loss / n_trained).backward()
            sums.append(loss.detach())
        torch.nn.utils.clip_grad_norm_(run.params, 1.0)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        total = float(torch.stack(sums).sum())
        gvs.sync()
        times.append((time.perf_counter() - t, sum(mb.n_tokens for mb in micro)))
        losses.append(total / n_trained)
        if prof is not None:
            prof.step()
    return times, losses, start


def child_ablate(spec: dict) -> dict:
    """One engine set up once; fast paths switched off in turn (QLORA_STUDIO_DISABLE is read per call).

    Per variant: warm-up steps, timed steps, tokens/s, the training-phase peak (weights, adapters,
    optimizer state and activations; loading excluded). Optionally a profile of the first variant.
    """
    import torch

    plan = gvs.plan_of(spec)
    run = _ours_run(spec, seq=plan["seq"], ckpt=spec.get("ckpt", True), mb=plan["micro_batch"], ga=plan["grad_accum"])
    batches = run._epoch(0)
    from qlora_studio.train import attention, varlen

    out: dict = {"variants": {}, "logs": [], "varlen_notes": list(varlen.NOTES)}
    pos = 0
    for v in spec["variants"]:
        os.environ["QLORA_STUDIO_DISABLE"] = v.get("off", "")
        gc.collect()
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        before = dict(attention.STATS)
        _, _, pos = _ablate_steps(run, batches, pos, v.get("warmup", plan["warmup"]))
        times, losses, pos = _ablate_steps(run, batches, pos, v.get("timed", plan["timed"]))
        tok = sum(n for _, n in times)
        sec = sum(t for t, _ in times)
        half = len(times) // 2
        rates = [sum(n for _, n in times[:half]) / sum(t for t, _ in times[:half]),
                 sum(n for _, n in times[half:]) / sum(t for t, _ in times[half:])] if half else []
        out["variants"][v["name"]] = {
            "off": v.get("off", ""), "tokens_per_s": tok / sec, "tokens_per_s_halves": rates,
            "step_s": [round(t, 4) for t, _ in times], "losses": [round(x, 4) for x in losses],
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
            "attention_calls": {k: attention.STATS[k] - before.get(k, 0) for k in attention.STATS}}
        log(f"ablate {v['name']}: {tok / sec:,.0f} tok/s, peak {out['variants'][v['name']]['peak_allocated_gib']} GiB")
    if spec.get("profile"):
        from torch.profiler import ProfilerActivity, profile

        os.environ["QLORA_STUDIO_DISABLE"] = spec["variants"][0].get("off", "")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            _, _, pos = _ablate_steps(run, batches, pos, 2)
        ka = prof.key_averages()
        out["profile_by_cuda"] = ka.table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70)
        out["profile_by_cpu"] = ka.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=70)
    return out


def child_estimator(spec: dict) -> dict:
    """Our engine's peak for seq 512/2048 x checkpointing on/off, against estimate_memory."""
    import torch

    from qlora_studio.estimate import estimate_memory
    from qlora_studio.recipe import load_recipe
    from qlora_studio.train import run_training

    work, plan = Path(spec["work"]), gvs.plan_of(spec)
    rows = []
    for seq in (512, 2048):
        for ckpt in (True, False):
            rdir = Path(tempfile.mkdtemp(prefix="est-", dir=work))
            recipe = rdir / "est.qlora.yaml"
            recipe.write_text(gvs.RECIPE.format(model=work / "model", r=gvs.LORA["r"], alpha=gvs.LORA["alpha"],
                                                dropout=gvs.LORA["dropout"], targets=", ".join(gvs.TARGETS),
                                                ckpt="true" if ckpt else "false", train=work / "train.jsonl",
                                                seq=seq, steps=4, mb=plan["micro_batch"], ga=plan["grad_accum"],
                                                lr=gvs.LR, runs=rdir / "runs", budget=0))
            est = estimate_memory(load_recipe(recipe))
            gc.collect()
            torch.cuda.empty_cache()
            base_alloc = torch.cuda.memory_allocated()
            phase: dict = {}

            def on_event(ev: dict) -> None:  # the training phase starts at status running
                if ev["type"] == "status" and ev["data"].get("state") == "running":
                    torch.cuda.reset_peak_memory_stats()
                if ev["type"] == "status" and ev["data"].get("state") == "saving":
                    phase["peak"] = torch.cuda.max_memory_allocated()

            torch.cuda.reset_peak_memory_stats()
            run_training(recipe, on_event=on_event)
            free, total = torch.cuda.mem_get_info()
            peak = (phase.get("peak", torch.cuda.max_memory_allocated()) - base_alloc) / 2**30
            reserved = torch.cuda.max_memory_reserved() / 2**30
            device_used = (total - free) / 2**30
            context = max(0.0, device_used - torch.cuda.memory_reserved() / 2**30)
            rows.append({"seq": seq, "micro_batch": plan["micro_batch"], "gradient_checkpointing": ckpt,
                         "measured_peak_allocated_gib": round(peak, 3), "measured_peak_reserved_gib": round(reserved, 3),
                         "cuda_context_gib": round(context, 3), "estimate_total_gib": round(est["total_gib"], 3),
                         "estimate_parts": {k: round(v, 3) for k, v in est.items() if k.endswith("_gib")},
                         "error_pct_vs_allocated": round(100 * (est["total_gib"] - peak) / peak, 1),
                         "error_pct_vs_reserved_plus_context": round(
                             100 * (est["total_gib"] - reserved - context) / (reserved + context), 1)})
            log(f"estimator seq {seq} ckpt {ckpt}: measured {peak:.2f} GiB, estimate {est['total_gib']:.2f}")
            gc.collect()
            torch.cuda.empty_cache()
    return {"configs": rows,
            "max_abs_error_pct": max(abs(r["error_pct_vs_allocated"]) for r in rows),
            "max_abs_error_pct_vs_reserved_plus_context": max(abs(r["error_pct_vs_reserved_plus_context"]) for r in rows)}


def child_ddp(spec: dict) -> dict:
    """Our engine on 1 and on 2 GPUs through the CLI; tokens/s from rank 0's metrics events."""
    work, plan = Path(spec["work"]), gvs.plan_of(spec)
    steps = plan["warmup"] + plan["timed"]
    out = {}
    for gpus in spec.get("ddp_gpus", (2,)):
        rdir = Path(tempfile.mkdtemp(prefix=f"ddp{gpus}-", dir=work))
        recipe = rdir / "ddp.qlora.yaml"
        recipe.write_text(gvs.RECIPE.format(model=work / "model", r=gvs.LORA["r"], alpha=gvs.LORA["alpha"],
                                            dropout=gvs.LORA["dropout"], targets=", ".join(gvs.TARGETS), ckpt="true",
                                            train=work / "train.jsonl", seq=plan["seq"], steps=steps,
                                            mb=plan["micro_batch"], ga=plan["grad_accum"], lr=gvs.LR,
                                            runs=rdir / "runs", budget="auto"))
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "qlora_studio.cli", "run", str(recipe), "--gpus", str(gpus)],
                              capture_output=True, text=True, timeout=spec.get("timeout", 300))
        if proc.returncode != 0:
            raise RuntimeError(f"ddp {gpus} GPUs failed: {proc.stderr[-2000:]}")
        run_dir = Path(proc.stdout.strip().splitlines()[-1])
        events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]
        tps = [e["data"]["tokens_per_s"] for e in events if e["type"] == "metrics" and e["data"]["step"] > plan["warmup"]]
        losses = [e["data"]["loss"] for e in events if e["type"] == "metrics"]
        out[f"gpus{gpus}"] = {"tokens_per_s_median": statistics.median(tps), "tokens_per_s_steps": tps,
                              "losses": losses, "wall_s": round(time.perf_counter() - t, 1)}
        log(f"ddp {gpus} GPU(s): {statistics.median(tps):,.0f} tok/s")
    if "gpus1" in out:
        out["ddp2_speedup"] = out["gpus2"]["tokens_per_s_median"] / out["gpus1"]["tokens_per_s_median"]
    return out


CHILDREN = {"build": gvs.child_build, "seed": gvs.child_seed, "ours": gvs.child_ours, "unsloth": child_unsloth,
            "maxseq": child_maxseq, "estimator": child_estimator, "ddp": child_ddp, "ablate": child_ablate}


# ------------------------------------------------------------------------------------ driver
def run_child(mode: str, spec: dict, logf: Path, timeout: float, tag: str | None = None) -> dict:
    tag = tag or mode
    work = Path(spec["work"])
    spec_path, out_path = work / f"{tag}.spec.json", work / f"{tag}.result.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    t = time.perf_counter()
    with logf.open("a") as lf:
        lf.write(f"\n===== {spec['shape']} {tag} =====\n")
        lf.flush()
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, str(spec_path)],
                                  stdout=lf, stderr=subprocess.STDOUT, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not out_path.exists():
        raise RuntimeError(f"{spec['shape']} {tag} failed (exit {code}); log tail:\n{logf.read_text()[-2500:]}")
    res = json.loads(out_path.read_text())
    res["process_wall_s"] = round(time.perf_counter() - t, 1)
    return res


def windows_of(res: dict, timing: dict) -> dict:
    """Per-window tokens/s over the timed steps: median and spread."""
    steps, toks = res["step_s"], res["step_tokens"]
    w = timing["window"]
    rates = [sum(toks[i:i + w]) / sum(steps[i:i + w]) for i in range(0, len(steps) - w + 1, w)]
    losses = res.get("losses") or res.get("losses_logged") or []
    return {"tokens_per_s_windows": [round(r, 1) for r in rates], "tokens_per_s_median": statistics.median(rates),
            "tokens_per_s_min": min(rates), "tokens_per_s_max": max(rates),
            "spread_pct": round(100 * (max(rates) - min(rates)) / statistics.median(rates), 1),
            "loss_last5_mean": statistics.fmean(losses[-5:]) if losses else None, "n_losses": len(losses)}


_OFF = "QLORA_STUDIO_DISABLE"
PATH_SPECS = {"seed": ("seed", {}), "liger": ("seed", {"liger": True}), "unsloth": ("unsloth", {}),
              "ours": ("ours", {}), "ours_24gib": ("ours", {"budget": BUDGET_GIB, "fraction_gib": BUDGET_GIB}),
              "ours_recipe": ("ours", {"budget": 0}), "ours_dropout0": ("ours", {"dropout": 0.0, "budget": 0}),
              "ours_profile": ("ours", {"profile": True}),
              "ours_plain": ("ours", {"env": {_OFF: "segments,liger,autocast,expandable"}}),
              "ours_noseg": ("ours", {"env": {_OFF: "segments"}}), "ours_noliger": ("ours", {"env": {_OFF: "liger"}}),
              "ours_noautocast": ("ours", {"env": {_OFF: "autocast"}}),
              "ours_noexp": ("ours", {"env": {_OFF: "expandable"}})}
ESTIMATES_S = {"tiny": 40, "1b": 75, "8b": 110}


def run_shape(a: argparse.Namespace) -> int:
    shape, timing = a.shape, TIMING[a.shape]
    if a.timing:
        w, n, k = (int(x) for x in a.timing.split(","))
        timing = {"warmup": w, "windows": n, "window": k}
    work = Path(a.work) / shape
    work.mkdir(parents=True, exist_ok=True)
    logf = Path(a.log) if a.log else work / "children.log"
    start = time.perf_counter()
    override = {"warmup": timing["warmup"], "timed": timing["windows"] * timing["window"]}
    spec = {"work": str(work), "shape": shape, "plan_override": override}
    doc = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": os.environ.get("BENCH_COMMAND") or " ".join(["python"] + sys.argv), "machine": gvs.machine(),
           "versions": {**gvs.versions(), **_more_versions()}, "shape": shape, "plan": {**gvs.PLANS[shape], **override},
           "timing": timing, "paths": {}, "errors": {}, "not_measured": []}
    out = Path(a.results)
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        doc["total_wall_s"] = round(time.perf_counter() - start, 1)
        (out / f"gpu-{shape}.json").write_text(json.dumps(doc, indent=1) + "\n")

    def fits(what: str, est: float) -> bool:
        left = a.budget_s - (time.perf_counter() - start)
        if left < est:
            doc["not_measured"].append(f"{shape} {what}: skipped, {left:.0f} s of the budget left, about {est:.0f} s needed")
            log(doc["not_measured"][-1])
            return False
        return True

    log(f"{shape}: building model + data")
    doc["build"] = run_child("build", spec, logf, 900)
    n4 = 4 * doc["build"]["params_non_embedding"]
    for task in [t for t in a.tasks.split(",") if t]:
        if task in PATH_SPECS:
            if not fits(task, ESTIMATES_S[shape]):
                continue
            mode, extra = PATH_SPECS[task]
            try:
                res = run_child(mode, {**spec, **extra}, logf, 600, tag=task)
            except Exception as err:  # noqa: BLE001 - keep the other paths' figures
                doc["errors"][task] = str(err)[-2500:]
                log(f"{shape} {task}: FAILED {str(err)[-800:]}")
                save()
                continue
            res.update(windows_of(res, timing))
            res["mfu"] = (n4 + _attn_flops_per_token(shape)) * res["tokens_per_s_median"] / (PEAK_TFLOPS * 1e12)
            doc["paths"][task] = res
            log(f"{shape} {task}: {res['tokens_per_s_median']:,.0f} tok/s (windows {res['tokens_per_s_windows']}), "
                f"peak {res['peak_allocated_gib'] or 0:.2f} GiB, loss {res['loss_last5_mean']}, lookups {res.get('segment_lookups')}")
        elif task.startswith("maxseq:"):
            name = task.split(":", 1)[1]
            if not fits(task, a.maxseq_s + 60):
                continue
            try:
                res = run_child("maxseq", {**spec, "path": name, "hi": a.maxseq_cap, "first": a.maxseq_first,
                                           "budget_s": a.maxseq_s}, logf, a.maxseq_s + 240, tag=f"maxseq-{name}")
                doc.setdefault("max_seq_24gib", {})[name] = res
                log(f"{shape} maxseq {name}: {res['max_seq']} (probes {[(p['tokens'], p['ok']) for p in res['probes']]})")
            except Exception as err:  # noqa: BLE001
                doc["errors"][task] = str(err)[-2500:]
                log(f"{shape} {task}: FAILED {str(err)[-800:]}")
        elif task == "ablate":
            variants = [dict(zip(("name", "off"), (x.split("=", 1) + [""])[:2])) for x in a.variants.split(";") if x]
            if not fits(task, 60 + 15 * len(variants)):
                continue
            try:
                doc["ablate"] = run_child("ablate", {**spec, "variants": variants, "profile": a.profile}, logf, 560)
                log(f"{shape} ablate: done")
            except Exception as err:  # noqa: BLE001
                doc["errors"][task] = str(err)[-2500:]
                log(f"{shape} {task}: FAILED {str(err)[-800:]}")
        elif task in ("estimator", "ddp"):
            if not fits(task, 110 if task == "estimator" else 90):
                continue
            try:
                doc[task] = run_child(task, spec, logf, 400)
                if task == "ddp" and doc["paths"].get("ours", {}).get("engine_tokens_per_s_median"):
                    one = doc["paths"]["ours"]["engine_tokens_per_s_median"]
                    doc["ddp"]["gpus1"] = {"tokens_per_s_median": one, "from": "the ours path (same engine figure)"}
                    doc["ddp"]["ddp2_speedup"] = doc["ddp"]["gpus2"]["tokens_per_s_median"] / one
                log(f"{shape} {task}: done")
            except Exception as err:  # noqa: BLE001
                doc["errors"][task] = str(err)[-2500:]
                log(f"{shape} {task}: FAILED {str(err)[-800:]}")
        else:
            raise SystemExit(f"unknown task {task!r}")
        save()
    save()
    _print_table(doc)
    return 0


def _attn_flops_per_token(shape: str) -> float:
    """Useful attention FLOPs per token (forward + backward, causal): 6 x layers x seq x hidden, halved."""
    s, plan = gvs.SHAPES[shape], gvs.PLANS[shape]
    return 6 * s["num_hidden_layers"] * plan["seq"] * s["hidden_size"] / 2


def _more_versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("liger_kernel", "unsloth", "unsloth_zoo", "triton"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _print_table(doc: dict) -> None:
    print(f"\n{doc['shape']}: path | tok/s median [min..max] | peak GiB | loss(last5) | mfu")
    for name, r in doc["paths"].items():
        print(f"  {name:14s} {r['tokens_per_s_median']:9,.0f} [{r['tokens_per_s_min']:,.0f}..{r['tokens_per_s_max']:,.0f}]"
              f" {r['peak_allocated_gib'] or 0:6.2f} {r['loss_last5_mean']} {r['mfu']:.3f}")
    for name, r in (doc.get("max_seq_24gib") or {}).items():
        print(f"  maxseq {name}: {r['max_seq']}")
    if doc.get("estimator"):
        print(f"  estimator max abs error {doc['estimator']['max_abs_error_pct']}%")
    if doc.get("ddp"):
        print(f"  ddp2 speedup {doc['ddp']['ddp2_speedup']:.3f}")
    if doc["errors"]:
        print("  errors:", list(doc["errors"]))


def _ratios(doc: dict) -> dict:
    p = doc["paths"]

    def ratio(key: str, num: str, den: str) -> float | None:
        if num in p and den in p and p[num].get(key) and p[den].get(key):
            return round(p[num][key] / p[den][key], 3)
        return None

    # Speed: ours as a user runs it (memory plan on, budget = the GPU). Memory: at equal micro batch,
    # sequence and checkpointing (ours_recipe: memory_budget_gib 0), as the target is stated.
    # A planned row's peak is its budget at work, not a like-for-like figure: no memory ratio without ours_recipe.
    equal = "ours_recipe"
    return {"c_over_a_tokens_per_s": ratio("tokens_per_s_median", "ours", "seed"),
            "c_over_unsloth_tokens_per_s": ratio("tokens_per_s_median", "ours", "unsloth"),
            "c_over_b_tokens_per_s": ratio("tokens_per_s_median", "ours", "liger"),
            "c_over_a_peak_memory": ratio("peak_allocated_gib", equal, "seed"),
            "c_over_unsloth_peak_memory": ratio("peak_allocated_gib", equal, "unsloth"),
            "c_over_unsloth_peak_memory_dropout0": ratio("peak_allocated_gib", "ours_dropout0", "unsloth"),
            "c_over_a_tokens_per_s_24gib": ratio("tokens_per_s_median", "ours_24gib", "seed"),
            "c_over_unsloth_tokens_per_s_24gib": ratio("tokens_per_s_median", "ours_24gib", "unsloth"),
            "c_over_a_tokens_per_s_recipe_plan": ratio("tokens_per_s_median", "ours_recipe", "seed"),
            "c_over_unsloth_tokens_per_s_recipe_plan": ratio("tokens_per_s_median", "ours_recipe", "unsloth"),
            "memory_peak_source": equal,
            "mfu": round(p["ours"]["mfu"], 4) if "ours" in p else None}


def _estimate(shape: str, seq: int, micro_batch: int, grad_accum: int, ckpt: bool,
              dropout: float = gvs.LORA["dropout"]) -> dict:
    """estimate_memory for our bench recipe on this shape (config only: runs anywhere)."""
    from transformers import LlamaConfig

    from qlora_studio.estimate import estimate_memory
    from qlora_studio.recipe import load_recipe

    d = Path(tempfile.mkdtemp(prefix="est-"))
    (d / "model").mkdir()
    LlamaConfig(**gvs.SHAPES[shape], max_position_embeddings=max(8192, seq)).to_json_file(d / "model" / "config.json")
    (d / "train.jsonl").write_text("")
    recipe = d / "e.qlora.yaml"
    recipe.write_text(gvs.RECIPE.format(model=d / "model", r=gvs.LORA["r"], alpha=gvs.LORA["alpha"],
                                        dropout=dropout, targets=", ".join(gvs.TARGETS),
                                        ckpt="true" if ckpt else "false", train=d / "train.jsonl", seq=seq, steps=4,
                                        mb=micro_batch, ga=grad_accum, lr=gvs.LR, runs=d / "runs", budget=0))
    return estimate_memory(load_recipe(recipe))


def estimator_rows(doc: dict) -> list[dict]:
    """Every measured peak of our engine in a shape file, beside estimate_memory for the same configuration.

    Two comparisons: the estimate without its overhead term (CUDA context, workspace, slack: what the
    caching allocator does not see) against the peak allocated in training, and, where the run
    recorded it, the whole estimate against the device footprint (peak reserved + CUDA context).
    """
    rows = []
    plan = doc["plan"]
    for name, r in doc["paths"].items():
        # Planned paths (ours, ours_24gib) fill their budget on purpose: planner_rows compares those.
        if name in ("ours_recipe", "ours_dropout0") and r.get("peak_allocated_gib"):
            rows.append({"source": f"{name} path (process peak; the load peaks lower)", "seq": plan["seq"],
                         "micro_batch": plan["micro_batch"], "gradient_checkpointing": True,
                         "dropout": 0.0 if "dropout0" in name else gvs.LORA["dropout"],
                         "measured_gib": r["peak_allocated_gib"], "footprint_gib": None})
    for p in (doc.get("max_seq_24gib") or {}).get("ours", {}).get("probes", []):
        if p["ok"]:
            rows.append({"source": "maxseq probe (peak of one optimizer step, weights included)", "seq": p["tokens"],
                         "micro_batch": 1, "gradient_checkpointing": True, "dropout": gvs.LORA["dropout"],
                         "measured_gib": p["peak_gib"], "footprint_gib": None})
    for c in (doc.get("estimator") or {}).get("configs", []):
        rows.append({"source": "estimator run (training-phase peak)", "seq": c["seq"], "micro_batch": c["micro_batch"],
                     "gradient_checkpointing": c["gradient_checkpointing"], "dropout": gvs.LORA["dropout"],
                     "measured_gib": c["measured_peak_allocated_gib"],
                     "footprint_gib": round(c["measured_peak_reserved_gib"] + c["cuda_context_gib"], 3)})
    for row in rows:
        est = _estimate(doc["shape"].split("-")[0], row["seq"], row["micro_batch"], plan["grad_accum"],
                        row["gradient_checkpointing"], row["dropout"])
        row["estimate_gib"] = round(est["total_gib"], 3)
        row["estimate_parts"] = {k: round(v, 3) for k, v in est.items() if k.endswith("_gib") and k != "total_gib"}
        allocator_part = est["total_gib"] - est["overhead_gib"]
        row["error_pct"] = round(100 * (allocator_part - row["measured_gib"]) / row["measured_gib"], 1)
        foot = row["footprint_gib"]
        row["error_pct_footprint"] = round(100 * (est["total_gib"] - foot) / foot, 1) if foot else None
    return rows


def planner_rows(doc: dict) -> list[dict]:
    """Each planned path's memory plan (from its run log) beside the peak it reached."""
    rows = []
    for name, r in doc["paths"].items():
        for line in r.get("logs") or []:
            m = re.search(r"predicted peak ([0-9.]+) GiB of a ([0-9.]+) GiB budget", line)
            if line.startswith("memory plan:") and m and r.get("peak_allocated_gib"):
                predicted, measured = float(m.group(1)), r["peak_allocated_gib"]
                rows.append({"shape": doc["shape"], "path": name, "plan": line.split(";  ")[0],
                             "predicted_gib": predicted, "budget_gib": float(m.group(2)),
                             "measured_gib": round(measured, 2),
                             "error_pct": round(100 * (predicted - measured) / measured, 1)})
    return rows


def merge(paths: list[str], results: Path, notes: list[str], earlier: list[str] | None = None,
          ddp_earlier: str | None = None) -> int:
    """gpu.json + gpu.md from the per-shape files; headline figures from the 8B shape (1B where 8B lacks one)."""
    docs = {d["shape"]: d for d in (json.loads(Path(x).read_text()) for x in paths)}
    head = docs.get("8b") or next(iter(docs.values()))
    fig = {"headline_shape": head["shape"], **_ratios(head)}
    fig["per_shape"] = {k: _ratios(d) for k, d in docs.items()}
    fig["max_seq_24gib"] = {k: v["max_seq"] for k, v in (head.get("max_seq_24gib") or {}).items()}
    fig["max_seq_24gib_source"] = {k: "this invocation" for k in fig["max_seq_24gib"]}
    for item in earlier or []:  # PATH=TOKENS=WHERE: a path not probed here, from an earlier measurement
        name, tokens, where = item.split("=", 2)
        if name not in fig["max_seq_24gib"]:
            fig["max_seq_24gib"][name] = int(tokens)
            fig["max_seq_24gib_source"][name] = where
    est_rows = [dict(r, shape=k) for k, d in docs.items() for r in estimator_rows(d)]
    runs = [r for r in est_rows if r["footprint_gib"]]
    # Headline: the estimator runs (seq 512/2048 x checkpointing on/off), whole estimate against the
    # device footprint; every other row (and the allocator-only comparison) is listed beside it.
    fig["estimator_max_abs_error_pct"] = max(abs(r["error_pct_footprint"]) for r in runs) if runs else None
    fig["estimator_max_abs_error_pct_allocated"] = max(abs(r["error_pct"]) for r in est_rows) if est_rows else None
    fig["estimator_vs_measured"] = est_rows
    fig["planner_vs_measured"] = [r for d in docs.values() for r in planner_rows(d)]
    ddp = [d["ddp"] for d in docs.values() if d.get("ddp")]
    fig["ddp2_speedup"] = round(ddp[0]["ddp2_speedup"], 3) if ddp else None
    fig["ddp2_speedup_source"] = "this invocation" if ddp else None
    if not ddp and ddp_earlier:  # VALUE=WHERE: no 2-GPU machine in this invocation
        value, where = ddp_earlier.split("=", 1)
        fig["ddp2_speedup"], fig["ddp2_speedup_source"] = float(value), where
    out = {"date": head["date"], "command": " && ".join(d["command"] for d in docs.values()),
           "machine": {k: d["machine"] for k, d in docs.items()}, "versions": head["versions"], **fig,
           "notes": notes, "shapes": docs}
    results.mkdir(parents=True, exist_ok=True)
    (results / "gpu.json").write_text(json.dumps(out, indent=1) + "\n")
    (results / "gpu.md").write_text(_markdown(out))
    print(json.dumps({k: v for k, v in out.items() if k not in ("shapes", "machine", "versions")}, indent=1))
    return 0


# The figures the headline always lists (None = not measured in these invocations).
HEADLINE_REQUIRED = ("c_over_a_tokens_per_s", "c_over_unsloth_tokens_per_s", "c_over_b_tokens_per_s", "mfu",
                     "c_over_a_peak_memory", "c_over_unsloth_peak_memory", "estimator_max_abs_error_pct", "ddp2_speedup")


def _markdown(out: dict) -> str:
    lines = ["# GPU: seed recipe, TRL + Liger, Unsloth and our engine", "",
             f"Date: {out['date']}  ", f"Command: `{out['command']}`  ",
             "Machine: " + "; ".join(f"{k}: {m.get('gpu')} (driver {m.get('driver')}), {m.get('cpu_count')} CPUs"
                                    for k, m in out["machine"].items()) + "  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items() if v), "",
             "Paths: seed = TRL SFTTrainer + peft + bitsandbytes (packing, TRL defaults); liger = the same with "
             "`use_liger_kernel=True`; unsloth = Unsloth's documented recipe (dropout 0, offloaded checkpointing); "
             "ours = `qlora_studio.train.run_training` with the recipe defaults (dropout 0.05 like the seed; "
             "memory_budget_gib auto: after the first step the memory plan keeps layers out of checkpointing and joins "
             "micro-batches while the GPU has room, same rows per step); ours_24gib = the same with memory_budget_gib 24 "
             "and the allocator capped at 24 GiB (a 24 GiB card); ours_recipe = memory_budget_gib 0 (micro batch as "
             "written, every layer checkpointed: the configuration of Unsloth's row, used for the memory ratios); "
             "ours_dropout0 = ours_recipe with lora.dropout 0. All: NF4 double quant, bf16, LoRA r=64 alpha=16 on 7 "
             "projections, paged AdamW 8-bit, packing, seq 2048, the same micro batch and grad accumulation, random "
             "weights, synthetic chat data. tokens/s per timed window (consecutive windows of one process), median "
             "and min..max; peak = torch.cuda.max_memory_allocated of the process; loss = mean of the last 5 "
             "steps; mfu = (4 N_non-embedding + causal attention FLOPs) x tokens/s / 790 TFLOP/s.", "",
             "## Headline (" + out["headline_shape"] + ")", "", "| figure | value |", "|---|---|"]
    for k in ("c_over_a_tokens_per_s", "c_over_unsloth_tokens_per_s", "c_over_b_tokens_per_s", "mfu",
              "c_over_a_peak_memory", "c_over_unsloth_peak_memory", "memory_peak_source",
              "c_over_unsloth_peak_memory_dropout0", "c_over_a_tokens_per_s_24gib", "c_over_unsloth_tokens_per_s_24gib",
              "c_over_a_tokens_per_s_recipe_plan", "c_over_unsloth_tokens_per_s_recipe_plan", "estimator_max_abs_error_pct",
              "estimator_max_abs_error_pct_allocated", "ddp2_speedup"):
        if out.get(k) is not None or k in HEADLINE_REQUIRED:  # optional figures only when measured
            lines.append(f"| {k} | {out.get(k)} |")
    if out.get("ddp2_speedup_source"):
        lines.append(f"| ddp2_speedup source | {out['ddp2_speedup_source']} |")
    for k, v in out["max_seq_24gib"].items():
        where = (out.get("max_seq_24gib_source") or {}).get(k, "")
        lines.append(f"| max_seq_24gib {k} | {v:,} ({where}) |")
    if out.get("planner_vs_measured"):
        lines += ["", "## Memory plan (training.memory_budget_gib) against the peak each planned path reached", "",
                  "| shape | path | plan | budget GiB | predicted GiB | measured GiB | error % |", "|---|---|---|---|---|---|---|"]
        for r in out["planner_vs_measured"]:
            what = r["plan"].removeprefix("memory plan: ").split("; predicted")[0]
            lines.append(f"| {r['shape']} | {r['path']} | {what} | {r['budget_gib']} | {r['predicted_gib']} | "
                         f"{r['measured_gib']} | {r['error_pct']} |")
    if out.get("estimator_vs_measured"):
        lines += ["", "## Memory estimator (estimate_memory) against measured peaks of our engine", "",
                  "| shape | source | seq | micro batch | checkpointing | dropout | peak allocated GiB | footprint GiB | "
                  "estimate GiB | error % (estimate - overhead vs allocated) | error % (estimate vs footprint) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in out["estimator_vs_measured"]:
            foot = f"{r['footprint_gib']:.2f}" if r.get("footprint_gib") else "-"
            lines.append(f"| {r['shape']} | {r['source']} | {r['seq']:,} | {r['micro_batch']} | {r['gradient_checkpointing']} | "
                         f"{r.get('dropout')} | {r['measured_gib']:.2f} | {foot} | {r['estimate_gib']:.2f} | {r['error_pct']} | "
                         f"{r.get('error_pct_footprint') if r.get('error_pct_footprint') is not None else '-'} |")
    for shape, d in out["shapes"].items():
        p = d["plan"]
        lines += ["", f"## {shape}: seq {p['seq']}, micro batch {p['micro_batch']}, grad accum {p['grad_accum']}, "
                  f"{p['warmup']} warm-up + {p['timed']} timed steps in {d['timing']['windows']} windows", "",
                  "| path | tok/s median | min..max | spread % | peak alloc GiB | peak reserved GiB | loss (last 5) | mfu |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in d["paths"].items():
            lines.append(f"| {name} | {r['tokens_per_s_median']:,.0f} | {r['tokens_per_s_min']:,.0f}..{r['tokens_per_s_max']:,.0f}"
                         f" | {r['spread_pct']} | {r['peak_allocated_gib'] or 0:.2f} | {r.get('peak_reserved_gib') or 0:.2f} | "
                         f"{r['loss_last5_mean']:.4f} | {r['mfu']:.3f} |")
        for name, r in d["paths"].items():
            for line in r.get("logs") or []:
                if line.startswith("memory plan:"):
                    lines.append(f"\n{name}: {line}")
        for name, r in (d.get("max_seq_24gib") or {}).items():
            lines.append(f"\nLongest sequence in {BUDGET_GIB} GiB, {name}: {r['max_seq']:,} tokens (first failure "
                         f"{r['first_failure']}, cap {r['cap']:,}; probes: "
                         + ", ".join(f"{x['tokens']} {'ok' if x['ok'] else 'OOM'} {x['peak_gib']} GiB" for x in r["probes"]) + ")")
        if d.get("estimator"):
            lines += ["", "Estimator (estimate_memory) against our measured peaks:", "",
                      "| seq | checkpointing | measured alloc GiB | reserved GiB | estimate GiB | error % |", "|---|---|---|---|---|---|"]
            for r in d["estimator"]["configs"]:
                lines.append(f"| {r['seq']} | {r['gradient_checkpointing']} | {r['measured_peak_allocated_gib']} | "
                             f"{r['measured_peak_reserved_gib']} | {r['estimate_total_gib']} | {r['error_pct_vs_allocated']} |")
        if d.get("ablate"):
            lines += ["", "In-process ablation (one engine set up once, QLORA_STUDIO_DISABLE per variant, in this order; "
                      "peak = training phase):", "", "| variant | paths off | tok/s | halves | peak alloc GiB |",
                      "|---|---|---|---|---|"]
            for name, v in d["ablate"]["variants"].items():
                lines.append(f"| {name} | {v['off'] or '-'} | {v['tokens_per_s']:,.0f} | "
                             + " / ".join(f"{x:,.0f}" for x in v["tokens_per_s_halves"])
                             + f" | {v['peak_allocated_gib'] or 0:.2f} |")
        if d.get("ddp"):
            g = d["ddp"]
            lines.append(f"\nDDP: 1 GPU {g['gpus1']['tokens_per_s_median']:,.0f} tok/s, 2 GPUs "
                         f"{g['gpus2']['tokens_per_s_median']:,.0f} tok/s: speedup {g['ddp2_speedup']:.3f}")
        for k, v in d["errors"].items():
            lines.append(f"\nFailed: {k}: `{v.strip().splitlines()[-1][:300] if v.strip() else v}`")
        for x in d["not_measured"]:
            lines.append(f"\nNot measured: {x}")
    if out["notes"]:
        lines += ["", "## Notes", ""] + [f"- {x}" for x in out["notes"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="1b", choices=sorted(TIMING))
    ap.add_argument("--tasks", default="ours,seed,unsloth,liger",
                    help="comma list, run in order: paths (" + ", ".join(PATH_SPECS) + "), maxseq:PATH, estimator, ddp")
    ap.add_argument("--maxseq-cap", type=int, default=65536)
    ap.add_argument("--maxseq-first", type=int, default=16384)
    ap.add_argument("--maxseq-s", type=float, default=150, help="probe time per path")
    ap.add_argument("--work", default=str(gvs.ROOT / "bench" / "work" / "gpu"))
    ap.add_argument("--results", default=str(gvs.ROOT / "bench" / "work" / "gpu"))
    ap.add_argument("--log")
    ap.add_argument("--timing", help="WARMUP,WINDOWS,WINDOW steps (default per shape)")
    ap.add_argument("--budget-s", type=float, default=540)
    ap.add_argument("--variants", default="all=;per_segment=varlen;no_offload=offload;plain_ckpt=varlen,offload",
                    help="ablate task: NAME=PATHS_OFF;... (QLORA_STUDIO_DISABLE per variant, one engine set up once)")
    ap.add_argument("--profile", action="store_true", help="ablate task: profile 2 steps of the first variant")
    ap.add_argument("--merge", nargs="+", metavar="JSON")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--maxseq-earlier", action="append", default=[], metavar="PATH=TOKENS=WHERE",
                    help="merge: a path's longest sequence from an earlier measurement, labelled with WHERE")
    ap.add_argument("--ddp-earlier", metavar="SPEEDUP=WHERE",
                    help="merge: the 2-GPU speedup from an earlier measurement when no invocation ran ddp, labelled")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        spec = json.loads(Path(a.child[1]).read_text())
        os.environ.update(spec.get("env", {}))
        res = CHILDREN[a.child[0]](spec)
        Path(spec["out"]).write_text(json.dumps(res, indent=1))
        return 0
    if a.merge:
        return merge(a.merge, Path(a.results), a.note, a.maxseq_earlier, a.ddp_earlier)
    for k, v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                 "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "UNSLOTH_DISABLE_STATISTICS": "1",
                 "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}.items():
        os.environ.setdefault(k, v)
    src = str(gvs.ROOT / "python-backend" / "src")
    if src not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (os.environ.get("PYTHONPATH"), src) if x)
    return run_shape(a)


if __name__ == "__main__":
    sys.exit(main())
