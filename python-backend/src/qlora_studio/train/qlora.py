"""The QLoRA training recipe: setup -> train -> save -> cleanup, in one flat, readable file.

No HF Trainer and no TRL: the data path (packing from qlora_studio.data, padding-free batches)
and the loop are ours, so every token and every byte of memory is accounted for. Metrics leave
only through the run's EventWriter (qlora_studio.events); the CLI and the server watch that.

Loss: the mean over the trained tokens of the whole optimizer step, i.e. the sum of token losses
across all grad-accumulation micro-batches divided by their trained-token count (not a mean of
micro-batch means, which would weight short micro-batches more).
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import NotFoundError, NotResumableError, RunExistsError, UsageError
from ..events import EventWriter
from ..publish import fsync_dir
from ..recipe.model import as_dict
from ..rundir import (ADAPTER_META, FROZEN_RECIPE, RunDir, RunLock, clear_stale_temps, find_resumable_run,
                      latest_checkpoint, new_run_id, runs_root_for)
from .batches import MicroBatch, epoch_batches
from .checkpoint import (intact_checkpoint, load_checkpoint, recover_temp_checkpoints, save_adapter_atomic,
                         save_checkpoint)
from .distributed import Dist, barrier, broadcast_object, close_group, init_group, launched_rank, sum_gradients, sum_scalars
from .errors import EXIT_STOPPED, Failure, classify, disk_failure
from .model import check_local_model, eval_mode, load_quantized_base, prepare_frozen_base
from .modelcard import model_card, render_prompt_example, write_card
from .schedule import lr_lambda, warmup_steps_for
from .trackers import Trackers

EventCallback = Callable[[dict[str, Any]], None]


class RunFailed(Exception):
    """A run ended `failed`; `.failure` says why and `.exit_code` what the CLI returns."""

    def __init__(self, run_dir: Path | None, failure: Failure) -> None:
        super().__init__(failure.message)
        self.run_dir = run_dir
        self.failure = failure
        self.exit_code = failure.exit_code


class RunStopped(Exception):
    """A run ended `stopped` after SIGTERM/SIGINT (a checkpoint was written when training had begun)."""

    exit_code = EXIT_STOPPED

    def __init__(self, run_dir: Path, step: int) -> None:
        # Only a run with a checkpoint can be resumed; otherwise say how to start again instead.
        if latest_checkpoint(run_dir) is not None:
            how = f"resume it with --resume --run-id {run_dir.name}"
        else:
            how = "it had no checkpoint yet, so start it again: run the same command"
        super().__init__(f"run stopped at step {step}; {how}")
        self.run_dir = run_dir
        self.step = step


class _StopWhileLoading(BaseException):
    """Raised by the signal handler while setup runs, so a long model load ends promptly."""


class _Events:
    """The EventWriter plus run.json: a status change updates both, then tells the watcher.

    Ranks other than 0 of a data-parallel run get a silent one (`writes=False`): one process
    owns the event log and run.json.
    """

    def __init__(self, run_dir: RunDir, on_event: EventCallback | None, writes: bool = True) -> None:
        self.run_dir = run_dir
        self.writes = writes
        self.writer = EventWriter(run_dir.events, run_dir.run_id) if writes else None
        self.on_event = on_event
        self.trackers: Trackers | None = None

    def emit(self, type_: str, **data: Any) -> None:
        if self.writer is None:
            return
        ev = self.writer.emit(type_, **data)
        if self.trackers is not None:
            self.trackers.log(ev)
        if self.on_event:
            self.on_event(ev)

    def progress(self, phase: str, message: str) -> None:
        """A setup phase began (the editor shows it while the run is not training yet)."""
        self.emit("progress", phase=phase, message=message)

    def status(self, state: str, **data: Any) -> None:
        if not self.writes:
            return
        self.run_dir.update(state=state)
        self.emit("status", state=state, **data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)


class QLoRARun:
    """One training run. Use `run_training` rather than this class directly."""

    def __init__(self, recipe_path: Path, *, output_dir: Path | None, max_steps: int | None,
                 run_id: str | None, resume: bool, on_event: EventCallback | None,
                 run_dir: Path | None = None) -> None:
        self.recipe_path = Path(recipe_path).resolve()
        self.output_dir = Path(output_dir).resolve() if output_dir else None
        self.given_run_dir = Path(run_dir).resolve() if run_dir else None
        self.lock: RunLock | None = None
        self.max_steps_override = max_steps
        self.requested_run_id = run_id
        self.resume = resume
        self.on_event = on_event
        self.stop_reason: str | None = None
        self.run_dir: Path | None = None
        self.ev: _Events | None = None
        self._old_handlers: dict[int, Any] = {}
        self._loading = False
        # The recipe is read once, when the run folder is made: the frozen copy is what trains.
        self._recipe_text: str | None = None
        self._recovery_notes: list[str] = []
        self.dist: Dist = launched_rank()

    # ---------------------------------------------------------------- run directory
    def _recipe_or_none(self) -> Any:
        try:
            from ..recipe import load_recipe

            return load_recipe(self.recipe_path)
        except Exception:  # a broken recipe still gets a run dir, so its error event has a home
            return None

    def _runs_root(self, recipe: Any) -> Path:
        if self.output_dir:
            return self.output_dir
        return runs_root_for(recipe) if recipe is not None else self.recipe_path.parent / "runs"

    def _pick_run_dir(self) -> RunDir:
        """The run folder: the one given (--run-dir, made by the server), else found or created here."""
        if self.given_run_dir is not None:
            rd = RunDir(self.given_run_dir)
            if self.resume:
                self._recover_stranded(rd.root, only=rd.run_id)
            if not rd.exists():
                if self.resume:
                    raise NotFoundError(f"no run in {rd.path}; check --run-dir")
                rd = RunDir.create(rd.root, rd.run_id, self.recipe_path)
            return rd
        recipe = self._recipe_or_none()
        root = self._runs_root(recipe)
        if not self.resume:
            run_name = recipe.output.run_name if recipe is not None else None
            return RunDir.create(root, self.requested_run_id or new_run_id(self.recipe_path, run_name), self.recipe_path)
        self._recover_stranded(root, only=self.requested_run_id)
        if self.requested_run_id:
            rd = RunDir(root / self.requested_run_id)
            if not rd.exists():
                raise NotFoundError(f"no run {self.requested_run_id!r} under {root}; check --run-id and --output-dir")
            return rd
        found = find_resumable_run(root, self.recipe_path)
        if found is None:
            raise NotResumableError(f"no resumable run of {self.recipe_path} under {root} "
                                    "(none has a checkpoint and is unfinished); start one without --resume")
        return found

    def open_run_dir(self) -> None:
        """Take the run folder and open its log.

        In a data-parallel run rank 0 takes it (lock, checks, event log) and the other ranks take
        rank 0's answer (or hear of its error), so every rank trains into the same folder.
        """
        if not self.dist.enabled:
            self._open_run_dir()
            return
        if self.dist.is_main:
            try:
                self._open_run_dir()
            except BaseException as e:
                broadcast_object(self.dist, ("error", f"{type(e).__name__}: {e}"))
                raise
            broadcast_object(self.dist, ("ok", str(self.run_dir)))
            return
        answer = broadcast_object(self.dist, ("", None))
        if answer[0] != "ok":
            raise UsageError(f"rank 0 could not open the run: {answer[1]}")
        self.run_dir = Path(str(answer[1]))
        self.rd = RunDir(self.run_dir)
        self.ev = _Events(self.rd, None, writes=False)

    def _open_run_dir(self) -> None:
        """Take the run folder (its exclusive lock first, so one trainer writes it), then open its log."""
        rd = self._pick_run_dir()
        self.lock = rd.lock()
        try:
            if self.resume:
                refusal = rd.resume_refusal(more_steps=self.max_steps_override is not None)
                if refusal:
                    raise NotResumableError(refusal)
            elif rd.started():
                raise RunExistsError(f"run {rd.run_id!r} already exists in {rd.root}; pass --resume to continue it "
                                     "or choose another --run-id")
        except BaseException:
            self.lock.release()
            raise
        self.run_dir = rd.path
        self.rd = rd
        if not self.resume and rd.frozen_recipe.is_file():
            try:  # freeze once: what trains is the frozen copy, not the recipe as it is later
                self._recipe_text = rd.frozen_recipe.read_bytes().decode("utf-8-sig")
            except UnicodeDecodeError:
                self._recipe_text = None  # load_recipe reports it with its usual message
        fsync_dir(rd.path)
        fsync_dir(rd.root)
        clear_stale_temps(rd.path)
        rd.update(pid=os.getpid())
        self.ev = _Events(rd, self.on_event)
        for note in self._recovery_notes:
            if note.startswith(rd.run_id + ": "):
                self.ev.log(note.split(": ", 1)[1], "warning")

    def _recover_stranded(self, root: Path, only: str | None = None) -> None:
        """Publish complete checkpoints a power cut left under their temp names, in this recipe's runs."""
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            if not d.is_dir() or (only and d.name != only):
                continue
            info = RunDir(d).read()  # another run's broken run.json reads as {}: that run's problem
            if not only and (info.get("recipe_path") != str(self.recipe_path) or info.get("state") == "completed"):
                continue
            if _alive(info.get("pid")):
                continue  # its writer may be between writing and renaming right now
            self._recovery_notes += [f"{d.name}: {n}" for n in recover_temp_checkpoints(d)]

    # ---------------------------------------------------------------- signals
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread; the caller stops us then
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        # In the loop only a flag: it checkpoints at the next step boundary, never mid-step. While
        # loading there is nothing to save, so the load itself is interrupted (it can take minutes).
        self.stop_reason = signal.Signals(signum).name
        if self._loading:
            self._loading = False
            raise _StopWhileLoading()

    def request_stop(self, reason: str = "requested") -> None:
        """Ask the loop to checkpoint and stop at the next step boundary (thread-safe)."""
        self.stop_reason = reason

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        """Recipe, seeds, tokenizer, data, 4-bit base, LoRA, optimizer, schedule, resume state."""
        import numpy as np
        import torch
        from peft import LoraConfig, get_peft_model

        from .loss import downcast_frozen_weights, fused_head_parts

        from ..data import build_dataset, load_tokenizer
        from ..recipe import load_recipe, recipe_from_text

        assert self.run_dir is not None and self.ev is not None
        ev = self.ev
        ev.status("loading")
        if self.resume:
            info = self.rd.read()
            frozen = self.run_dir / FROZEN_RECIPE
            original = Path(info.get("recipe_path") or self.recipe_path)
            self.recipe = recipe_from_text(frozen.read_text(encoding="utf-8"), original.parent,
                                           source=str(frozen), recipe_path=original)
        elif self._recipe_text is not None:
            self.recipe = recipe_from_text(self._recipe_text, self.recipe_path.parent, source=str(self.recipe_path),
                                           recipe_path=self.recipe_path, check_files=True)
        else:
            self.recipe = load_recipe(self.recipe_path)
        r = self.recipe
        for w in r.warnings:
            ev.log(f"recipe: {w}", "warning")
        t = r.training
        if self.dist.is_main:
            self.rd.update(base_model=r.base_model)
        self._check_distributed(r)
        # Before the tokenizer: a missing model folder is a recipe problem, not a data problem.
        check_local_model(r.model_location(), r.is_local_model())
        if self.dist.is_main:  # one process logs to TensorBoard / W&B
            ev.trackers = Trackers(r.logging, self.rd.path, self.rd.run_id, r.to_dict())
        model_location = r.model_location()
        if not r.is_local_model():
            from ..progress import download_model

            model_location = download_model(model_location, r.revision, ev.emit)

        seed = t.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        ev.progress("tokenizer", "loading the tokenizer")
        self.tokenizer = load_tokenizer(r)
        ev.progress("data", "reading and tokenizing the data")
        ds = build_dataset(r, self.tokenizer)
        if ds.skipped:
            ev.log(f"skipped {ds.skipped} bad rows (data.skip_bad_rows is true): "
                   + "; ".join(str(b) for b in ds.bad_rows[:20]), "warning")
        if not ds.train:
            raise ValueError("no training examples left after reading the data")
        self.train_examples, self.eval_examples = ds.train, ds.eval
        ev.log(f"data: {len(ds.train)} train / {len(ds.eval)} eval examples; stats {ds.stats}")

        q = r.quantization
        from .kernels import prefer_expandable_segments

        prefer_expandable_segments()
        ev.progress("quantize", f"loading {r.base_model} and quantizing it to {q.bits}-bit {q.quant_type}")
        model, minfo = load_quantized_base(
            model_location, bits=q.bits, quant_type=q.quant_type, double_quant=q.double_quant,
            compute_dtype=q.compute_dtype, quant_storage=q.quant_storage_dtype,
            trust_remote_code=r.trust_remote_code, revision=r.revision,
            looks_local=r.is_local_model(), device_index=self.dist.local_rank)
        self.device = minfo["device"]
        ev.log(f"base model {r.base_model}: {minfo['bits']}-bit {minfo['quant_type']} "
               f"(double quant {minfo['double_quant']}), compute {minfo['compute_dtype']} on {self.device}")
        from .kernels import enabled

        offload = bool(t.gradient_checkpointing) and self.device == "cuda" and enabled("offload")
        prepare_frozen_base(model, gradient_checkpointing=bool(t.gradient_checkpointing) and not offload)
        if offload:
            from .offload import offload_checkpointing

            n = offload_checkpointing(model)
            ev.log(f"gradient checkpointing: {n} decoder layers, their inputs kept in pinned host memory")
        if t.gradient_checkpointing and self.device == "cuda" and enabled("tiled_mlp"):
            from .offload import MLP_TILE_TOKENS, tile_mlps

            if tile_mlps(model):
                ev.log(f"micro-batches over {2 * MLP_TILE_TOKENS:,} tokens run the MLP in tiles of {MLP_TILE_TOKENS:,}")
        model.config.use_cache = False  # a cache would also disable the packed (block-diagonal) mask
        self.compute_dtype = getattr(torch, minfo["compute_dtype"])
        cast = downcast_frozen_weights(model, self.compute_dtype)
        if cast:
            ev.log(f"kept {cast} frozen non-quantized weights (norms, embeddings, head) in {minfo['compute_dtype']}")
        ev.progress("lora", "adding the LoRA adapters")
        self._fast_paths(model)
        lcfg = LoraConfig(r=r.lora.r, lora_alpha=r.lora.alpha, lora_dropout=r.lora.dropout,
                          target_modules=_targets(r.lora.target_modules), bias=r.lora.bias, task_type="CAUSAL_LM")
        self.model = get_peft_model(model, lcfg)
        fused_lora = 0
        if self.device == "cuda" and enabled("fused_lora"):
            from .lora_fused import fuse_lora_layers

            fused_lora = fuse_lora_layers(self.model)
            if fused_lora:
                ev.log("LoRA: adapter product accumulated into the 4-bit layer's output in one matmul")
        from .plan import Planner

        self.planner = Planner(self.model, r, ev.log, active=self.device == "cuda",
                               dropout_copies=not fused_lora)
        self.loss_parts = fused_head_parts(self.model)
        ev.log("loss: chunked output head over trained tokens only" if self.loss_parts is not None
               else "loss: full logits (this model's output head is not a plain frozen linear map)")
        trainable, total = self.model.get_nb_trainable_parameters()
        ev.log(f"LoRA r={r.lora.r} alpha={r.lora.alpha} on {lcfg.target_modules}: "
               f"{trainable:,} trainable of {total:,} parameters")

        if self.dist.enabled:
            # Same adapters on every rank (seeded above), different dropout masks from here on.
            torch.manual_seed(seed + self.dist.rank)
            ev.log(f"data parallel: {self.dist.world} processes, {self.dist.world * int(t.micro_batch_size) * int(t.grad_accum)} "
                   "rows per optimizer step")
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self._make_optimizer(t)
        self.batches_per_epoch = len(self._epoch(0))
        if t.max_steps is not None or self.max_steps_override is not None:
            total_steps = int(self.max_steps_override or t.max_steps)
        else:
            per_step = t.grad_accum * self.dist.world
            total_steps = max(1, math.ceil(t.epochs * self.batches_per_epoch / per_step))

        self.state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_index": 0, "tokens_seen": 0,
                                      "best_eval_loss": None, "best_step": None, "evals_without_improvement": 0,
                                      "last_loss": None, "last_eval_loss": None, "total_steps": total_steps,
                                      "seed": seed, "run_id": self.run_dir.name}
        ck = None
        if self.resume:
            ck, skipped = intact_checkpoint(self.run_dir)
            for note in skipped:
                ev.log(note, "warning")
            if ck is None:
                raise UsageError(f"run {self.run_dir.name} has no intact checkpoint to resume from "
                                 f"({'; '.join(skipped)}); start a new run")
        if ck is not None:
            # The saved state carries the schedule length, so a resumed run ends where it would have.
            saved = json.loads((ck / "trainer_state.json").read_text())
            total_steps = int(self.max_steps_override or saved["total_steps"])
        self.total_steps = total_steps
        warmup = warmup_steps_for(total_steps, t.warmup_steps, t.warmup_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(t.scheduler, total_steps, warmup))
        if ck is not None:
            self.state.update(load_checkpoint(ck, self.model, self.optimizer, self.scheduler))
            # The optimizer state carries the lr of the saved schedule; recompute it from ours so
            # a resume with a different --max-steps follows its own schedule from the first step.
            for group, base_lr, fn in zip(self.optimizer.param_groups, self.scheduler.base_lrs,
                                          self.scheduler.lr_lambdas):
                group["lr"] = base_lr * fn(self.scheduler.last_epoch)
            self.state["total_steps"] = total_steps
            ev.log(f"resumed from {ck.name}: step {self.state['step']}, epoch {self.state['epoch']}, "
                   f"batch {self.state['batch_index']}")
        if self.dist.is_main:
            self.rd.update(total_steps=total_steps)

    def _check_distributed(self, r: Any) -> None:
        """Refuse what data-parallel training cannot do here, with the fix."""
        section = r.distributed
        if section is None or not self.dist.enabled:
            return
        if str(section.strategy) == "fsdp":
            q = r.quantization
            if str(q.quant_storage_dtype) == "uint8" or (q.compute_dtype != "auto" and q.quant_storage_dtype != q.compute_dtype):
                raise ValueError("distributed.strategy fsdp shards the 4-bit weights, which needs "
                                 "quantization.quant_storage_dtype equal to the compute dtype (bfloat16 on most "
                                 "GPUs); set it, or use strategy: ddp")
            raise ValueError("distributed.strategy fsdp is not available in this version; use strategy: ddp "
                             "(each GPU holds the whole 4-bit base)")

    def _fast_paths(self, model: Any) -> None:
        """Segment attention for packed rows, fused kernels on CUDA; each logged, each with its plain path."""
        from .attention import use_segment_attention
        from .kernels import apply_fused_kernels, enabled

        if bool(self.recipe.data.packing) and enabled("segments"):
            if use_segment_attention(model):
                self.ev.log("attention: " + self._packed_attention())
            else:
                self.ev.log(f"attention: {model.config._attn_implementation} (segment attention needs sdpa)")
        fused = apply_fused_kernels(model, self.device)
        if fused:
            self.ev.log(fused)
        if self.device == "cuda" and str(self.compute_dtype) == "torch.float16":
            self.ev.log("mixed precision: off (fp16 compute keeps LoRA in fp32)")

    def _packed_attention(self) -> str:
        """Which kernel packed rows get: variable-length flash on a GPU where it checks out, else per-example SDPA."""
        import torch

        from . import varlen
        from .kernels import enabled

        if self.device == "cuda" and enabled("varlen") and self.compute_dtype in (torch.bfloat16, torch.float16):
            ok = varlen.check_once(torch.device("cuda", torch.cuda.current_device()), self.compute_dtype)
            if ok:
                return "variable-length flash attention, one call per layer for all packed examples"
            return "one causal SDPA call per packed example (" + "; ".join(varlen.NOTES) + ")"
        return "one causal SDPA call per packed example (no block-diagonal mask)"

    def _make_optimizer(self, t: Any) -> Any:
        import torch

        kw = {"lr": t.lr, "weight_decay": t.weight_decay}
        if self.device == "cuda" and t.optimizer != "adamw":
            import bitsandbytes.optim as bo

            cls = {"paged_adamw_8bit": bo.PagedAdamW8bit, "adamw_8bit": bo.AdamW8bit,
                   "paged_adamw_32bit": bo.PagedAdamW32bit}[t.optimizer]
            self.ev.log(f"optimizer: bitsandbytes {cls.__name__}")
            return cls(self.params, **kw)
        if t.optimizer != "adamw":
            self.ev.log(f"optimizer: torch AdamW ({t.optimizer} needs CUDA; this run is on the CPU)")
        else:
            self.ev.log("optimizer: torch AdamW")
        return torch.optim.AdamW(self.params, **kw)

    def _epoch(self, epoch: int) -> list[MicroBatch]:
        t, d = self.recipe.training, self.recipe.data
        return epoch_batches(self.train_examples, packing=d.packing, max_seq_len=d.max_seq_len,
                             micro_batch_size=t.micro_batch_size, pad_id=int(self.tokenizer.pad_token_id),
                             seed=t.seed, epoch=epoch)

    # ---------------------------------------------------------------- train
    def _loss_sum(self, mb: MicroBatch) -> Any:
        """Summed cross-entropy of one micro-batch's trained tokens (labels shifted by one)."""
        from .attention import remember_segments, segments_of
        from .kernels import autocast_for
        from .loss import token_loss_sum

        dev = self.model.device if self.device == "cuda" else "cpu"

        def to_dev(t: Any) -> Any:
            return t.to(dev, non_blocking=True) if t is not None else None

        position_ids = to_dev(mb.position_ids)
        if position_ids is not None:
            remember_segments(position_ids, segments_of(mb.position_ids))  # from the host copy: no sync
        with autocast_for(self.device, self.compute_dtype):
            return token_loss_sum(self.model, input_ids=to_dev(mb.input_ids), labels=to_dev(mb.labels),
                                  position_ids=position_ids, attention_mask=to_dev(mb.attention_mask),
                                  parts=self.loss_parts)

    def train(self) -> str:
        """The loop. Returns how it ended: "completed", "early_stopping" or "stopped"."""
        import torch

        ev, t, st = self.ev, self.recipe.training, self.state
        ga = t.grad_accum
        world, rank = self.dist.world, self.dist.rank
        clip = t.max_grad_norm if t.max_grad_norm > 0 else float("inf")
        batches = self._epoch(st["epoch"])
        ev.status("running", total_steps=self.total_steps)
        self.model.train()
        window_tokens, window_start = 0, time.perf_counter()
        while st["step"] < self.total_steps:
            if self.stop_reason:
                return "stopped"
            micro = []
            for _ in range(ga * world):
                if st["batch_index"] >= len(batches):
                    st["epoch"] += 1
                    st["batch_index"] = 0
                    batches = self._epoch(st["epoch"])
                micro.append(batches[st["batch_index"]])
                st["batch_index"] += 1
            step_tokens = sum(mb.n_tokens for mb in micro)
            n_trained = max(1, sum(mb.n_trained for mb in micro))
            mine = micro[rank * ga:(rank + 1) * ga]
            self.planner.before_step()
            loss_sums = self._accumulate(mine, n_trained)
            loss_total: Any = torch.stack(loss_sums).sum() if loss_sums else 0.0
            if self.dist.enabled:
                sum_gradients(self.dist, self.params)
                loss_total, stops = sum_scalars(self.dist, [float(loss_total), 1.0 if self.stop_reason else 0.0],
                                                self._reduce_device())
                if stops and not self.stop_reason:
                    self.stop_reason = "stopped on another rank"
            norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
            lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            grad_norm, loss_total = float(norm), float(loss_total)
            self.planner.after_step()
            st["step"] += 1
            st["tokens_seen"] += step_tokens
            window_tokens += step_tokens
            st["last_loss"] = loss_total / n_trained
            step = st["step"]
            if step % t.log_every == 0 or step == self.total_steps:
                elapsed = max(1e-9, time.perf_counter() - window_start)
                self._metrics(st["last_loss"], lr, grad_norm, window_tokens / elapsed, len(batches))
                window_tokens, window_start = 0, time.perf_counter()
            if self.eval_examples and t.eval_every and step % t.eval_every == 0 and step < self.total_steps:
                if self.evaluate():
                    return "early_stopping"
            if t.save_every and step % t.save_every == 0 and step < self.total_steps:
                self.checkpoint()
        return "completed"

    def _accumulate(self, micro: list[MicroBatch], n_trained: int) -> list[Any]:
        """Forward and backward of this rank's micro-batches (joined as the memory plan says);
        the summed losses, still on the device. A planned step that runs out of memory is retaken
        as the recipe says."""
        from .errors import is_oom

        why = None
        try:
            return self._forward_backward(self.planner.groups(micro), n_trained)
        except RuntimeError as err:
            if self.planner.plan.is_recipe or not is_oom(err):
                raise
            why = str(err).splitlines()[0][:200]
        # Outside the except block: the traceback (and the activations its frames hold) is gone.
        self.optimizer.zero_grad(set_to_none=True)
        import torch

        torch.cuda.empty_cache()
        self.planner.drop(why)
        return self._forward_backward(micro, n_trained)

    def _forward_backward(self, micro: list[MicroBatch], n_trained: int) -> list[Any]:
        # Loss and gradient norm stay on the device until the optimizer step is queued: reading
        # them earlier would make the host wait for the GPU once per micro-batch.
        loss_sums = []
        for mb in micro:
            loss_sum = self._loss_sum(mb)
            (loss_sum / n_trained).backward()
            loss_sums.append(loss_sum.detach())
        return loss_sums

    def _reduce_device(self) -> Any:
        """Where collective tensors live: this rank's GPU under NCCL, the CPU under gloo."""
        import torch

        return torch.device("cuda", self.dist.local_rank) if self.device == "cuda" else torch.device("cpu")

    def _metrics(self, loss: float, lr: float, grad_norm: float, tps: float, n_batches: int) -> None:
        import psutil
        import torch

        st = self.state
        data: dict[str, Any] = {
            "step": st["step"], "total_steps": self.total_steps,
            "epoch": round(st["epoch"] + st["batch_index"] / max(1, n_batches), 4),
            "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": round(tps, 1),
            "tokens_seen": st["tokens_seen"], "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        }
        if self.device == "cuda":
            data["mem_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
            data["mem_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        self.ev.emit("metrics", **data)

    def evaluate(self) -> bool:
        """Eval loss over the eval set; keeps the best adapter; returns True when early stopping fires."""
        import torch

        t, st = self.recipe.training, self.state
        d = self.recipe.data
        batches = epoch_batches(self.eval_examples, packing=d.packing, max_seq_len=d.max_seq_len,
                                micro_batch_size=t.micro_batch_size, pad_id=int(self.tokenizer.pad_token_id),
                                seed=t.seed, epoch=0)
        eval_mode(self.model)
        _keep_training_kernels(self.model)
        total, count = 0.0, 0
        with torch.no_grad():
            for mb in batches[self.dist.rank::self.dist.world]:
                total += float(self._loss_sum(mb))
                count += mb.n_trained
        total, count = sum_scalars(self.dist, [total, count], self._reduce_device())
        self.model.train()
        eval_loss = total / max(1, count)
        best = st["best_eval_loss"]
        is_best = best is None or eval_loss < best - t.early_stopping.min_delta
        if is_best:
            st["best_eval_loss"], st["best_step"], st["evals_without_improvement"] = eval_loss, st["step"], 0
            if self.dist.is_main:
                save_adapter_atomic(self.model, self.run_dir / "checkpoints" / "best", self._adapter_extras)
            barrier(self.dist)
        else:
            st["evals_without_improvement"] += 1
        st["last_eval_loss"], st["last_eval_step"] = eval_loss, st["step"]
        self.ev.emit("eval", step=st["step"], eval_loss=eval_loss, best_eval_loss=st["best_eval_loss"],
                     is_best=is_best)
        patience = t.early_stopping.patience
        return patience > 0 and st["evals_without_improvement"] >= patience

    def checkpoint(self) -> Path:
        """Write checkpoints/step-N (atomic, rank 0 only) and emit a checkpoint event."""
        path = self.run_dir / "checkpoints" / f"step-{self.state['step']}"
        if self.dist.is_main:
            path = save_checkpoint(self.run_dir, self.state["step"], self.model, self.optimizer, self.scheduler,
                                   dict(self.state), self.recipe.training.keep_checkpoints)
            self.ev.emit("checkpoint", step=self.state["step"], path=str(path))
            self.ev.writer.sync()  # the log up to this checkpoint is as durable as the checkpoint
        barrier(self.dist)
        return path

    # ---------------------------------------------------------------- save
    def _adapter_extras(self, folder: Path) -> None:
        # The adapter must carry its tokenizer and chat template: prompts at inference time have to
        # be rendered exactly as in training, and merge copies them into the merged model.
        self.tokenizer.save_pretrained(folder)
        q = self.recipe.quantization
        meta = {"base_model": self.recipe.model_location(), "run_id": self.run_dir.name, "step": self.state["step"],
                "quantization": as_dict(q), "chat_template": self.recipe.data.chat_template}
        (folder / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")

    def save(self, ended: str) -> Path:
        """Final eval, last checkpoint, adapter/ and the model card."""
        ev, st = self.ev, self.state
        ev.status("saving")
        if self.eval_examples and ended != "stopped" and st.get("last_eval_step") != st["step"]:
            self.evaluate()
        self.checkpoint()
        if ended == "stopped":
            return self.run_dir
        adapter = self.run_dir / "adapter"
        if self.dist.is_main:
            adapter = save_adapter_atomic(self.model, adapter, self._adapter_extras)
            self.write_card(adapter)
        barrier(self.dist)
        return adapter

    def write_card(self, adapter: Path) -> None:
        """README.md in the run dir and in adapter/ (the last step's adapter; best is in checkpoints/best)."""
        r, st = self.recipe, self.state
        metrics = {"steps": st["step"], "tokens_seen": st["tokens_seen"], "final_train_loss": st["last_loss"],
                   "final_eval_loss": st["last_eval_loss"], "best_eval_loss": st["best_eval_loss"],
                   "best_eval_step": st["best_step"]}
        frozen = self.run_dir / FROZEN_RECIPE
        notes = ["`adapter/` holds the adapter of the last step. The adapter with the best eval loss "
                 f"(step {st['best_step']}) is kept in `checkpoints/best/`."] if st["best_step"] else []
        card = model_card(title=f"QLoRA adapter: {self.run_dir.name}", base_model=r.base_model,
                          recipe_text=frozen.read_text(encoding="utf-8") if frozen.exists() else None,
                          metrics=metrics, prompt_example=render_prompt_example(self.tokenizer), notes=notes)
        write_card(self.run_dir / "README.md", card)
        write_card(adapter / "README.md", card)

    # ---------------------------------------------------------------- the whole run
    def execute(self) -> Path:
        """Run every phase; on failure emit `error` + status failed and raise RunFailed."""
        if self.max_steps_override is not None and int(self.max_steps_override) < 1:
            raise UsageError(f"--max-steps must be at least 1 (got {self.max_steps_override})")
        try:
            init_group(self.dist)
            self.open_run_dir()
        except OSError as err:  # a read-only or full disk before the event log exists
            close_group(self.dist)
            failure = disk_failure(err, self.run_dir or self.given_run_dir or self._runs_root(self._recipe_or_none()))
            if failure is None:
                raise
            raise RunFailed(self.run_dir, failure) from err
        except BaseException:
            close_group(self.dist)
            raise
        assert self.run_dir is not None and self.ev is not None
        self._install_signals()
        try:
            self._loading = True
            try:
                self.setup()
            except _StopWhileLoading:
                self.state = {"step": 0}
            finally:
                self._loading = False
            if self.stop_reason:
                self.ev.status("stopped", reason=self.stop_reason, message="stopped before training began")
                raise RunStopped(self.run_dir, self.state["step"])
            ended = self.train()
            adapter = self.save(ended)
            if ended == "stopped":
                self.ev.status("stopped", reason=self.stop_reason,
                               message=f"checkpoint at step {self.state['step']}; resume with --resume")
                raise RunStopped(self.run_dir, self.state["step"])
            self.ev.status("completed", adapter_path=str(adapter), reason=ended)
            return self.run_dir
        except RunStopped:
            raise
        except UsageError as err:
            self._record_failure(str(err))
            raise
        except BaseException as err:  # noqa: BLE001 - every failure must reach the event log
            failure = classify(err)
            if failure.kind == "exception":  # a full or read-only disk is named, not a traceback
                failure = disk_failure(err, self.run_dir) or failure
            self._record_failure(failure.message[:500], failure)
            raise RunFailed(self.run_dir, failure) from err
        finally:
            self._restore_signals()
            if self.ev.trackers is not None:
                self.ev.trackers.close()
            self.ev.close()
            close_group(self.dist)
            if self.lock is not None:
                self.lock.release()

    def _record_failure(self, message: str, failure: Failure | None = None) -> None:
        """The error event and the failed state, after removing partial folders (on a full disk they
        hold the space the event needs). A log that cannot be written must not hide the error."""
        assert self.run_dir is not None and self.ev is not None
        try:
            clear_stale_temps(self.run_dir)
        except OSError:
            pass
        try:
            if failure is not None:
                self.ev.emit("error", **failure.event_data())
            self.ev.status("failed", message=message)
        except Exception:  # noqa: BLE001 - the caller raises the original error next
            pass


def _alive(pid: Any) -> bool:
    """Whether another process with this pid runs (after a power cut the recorded one does not)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _keep_training_kernels(model: Any) -> None:
    """Keep every CPU 4-bit layer on its training kernel during evaluation.

    In eval mode bitsandbytes may repack CPU 4-bit weights for an inference kernel and keeps them
    packed afterwards, so training after an eval would run other kernels (other rounding) than a
    run resumed from a checkpoint: a resume with evaluation on would not be bit-exact.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:
        return
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit) and m.weight.device.type == "cpu":
            m.training = True


def _targets(spec: Any) -> Any:
    if isinstance(spec, str):
        return spec
    return list(spec)


def run_training(recipe_path: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None,
                 max_steps: int | None = None, run_id: str | None = None, resume: bool = False,
                 on_event: EventCallback | None = None, run_dir: str | os.PathLike[str] | None = None) -> Path:
    """Train the recipe and return the run directory.

    Raises RunFailed (with `.exit_code` 2/3/4/1 and the classified failure) when the run fails,
    RunStopped (exit code 130) after SIGTERM/SIGINT, UsageError (2) for bad arguments. Every
    event is also passed to `on_event` right after it is written to events.jsonl. `run_dir` is the
    run folder to use as is (the server makes it); without it the folder is found or made here.
    """
    run = QLoRARun(Path(recipe_path), output_dir=Path(output_dir) if output_dir else None, max_steps=max_steps,
                   run_id=run_id, resume=resume, on_event=on_event, run_dir=Path(run_dir) if run_dir else None)
    return run.execute()
