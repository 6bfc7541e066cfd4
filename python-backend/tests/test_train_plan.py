"""The memory plan: what it chooses inside a budget, and that a planned step trains exactly as the
recipe's (joined micro-batches, layers kept out of checkpointing), falling back on out-of-memory.

Choosing needs CUDA's memory counters, so the loop tests force a plan on the CPU (the planner's
choice replaced, named so below); joining, keeping and the fallback then run for real.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import read_events, write_recipe_variant

from qlora_studio.train import plan as plan_mod
from qlora_studio.train.batches import join_micro_batches, packed_batches
from qlora_studio.train.plan import GIB, Plan, budget_bytes, choose_plan, merge_factors


def _choose(**kw):
    args = dict(layers=32, grad_accum=2, checkpointing=True, can_merge=True, resident=6 * GIB,
                transient=2 * GIB, per_layer=lambda tokens: tokens * 180_000, merge_tokens=4096,
                budget=24 * GIB, max_merge_tokens=16384)
    args.update(kw)
    return choose_plan(**args)


def test_the_plan_fits_the_budget_and_prefers_fewer_replays() -> None:
    p = _choose()
    usable = 24 * GIB * (1 - plan_mod.HEADROOM)
    assert p.predicted_peak <= usable
    # 24 GiB: 6 + 2 resident/transient leave ~13.6 GiB at 0.74 GB a layer of 4,096 tokens (the 8B shape).
    assert p.merge == 1 and p.keep == int((usable - 8 * GIB) // (4096 * 180_000)) == 19
    assert 0 < p.keep < 32
    roomy = _choose(budget=139 * GIB)
    assert roomy.keep == 32 and roomy.merge == 2  # everything fits: no replay, one forward a step
    assert roomy.predicted_peak == 6 * GIB + 4 * GIB + 32 * 8192 * 180_000


def test_nothing_fits_means_the_recipe_plan() -> None:
    p = _choose(budget=8 * GIB)
    assert p.is_recipe and p.keep == 0 and p.merge == 1
    assert _choose(budget=0).is_recipe


def test_merging_respects_divisors_packing_and_tile_length() -> None:
    assert merge_factors(6, True) == [1, 2, 3, 6]
    assert merge_factors(6, False) == [1]
    p = _choose(grad_accum=8, budget=139 * GIB, merge_tokens=4096, max_merge_tokens=16384)
    assert p.merge == 4 and 8 % p.merge == 0  # 8 x 4,096 would run the MLP in tiles
    assert _choose(can_merge=False, budget=139 * GIB).merge == 1
    # Without checkpointing only merging is left, and only when the bigger transient fits.
    assert _choose(checkpointing=False, budget=139 * GIB) == Plan(merge=2, keep=0, layers=32,
                                                                  predicted_peak=10 * GIB, budget=139 * GIB)
    assert _choose(checkpointing=False, budget=10 * GIB).is_recipe


def test_budget_setting() -> None:
    assert budget_bytes("auto", free=70 * GIB, reserved=9 * GIB) == 79 * GIB
    assert budget_bytes(None, free=70 * GIB, reserved=0) == 70 * GIB
    assert budget_bytes(24, free=70 * GIB, reserved=0) == 23 * GIB  # the CUDA context counted
    assert budget_bytes(200, free=70 * GIB, reserved=2 * GIB) == 72 * GIB  # never more than the device has
    assert budget_bytes(0, free=70 * GIB, reserved=0) == 0


def test_joined_micro_batches_are_the_larger_micro_batch() -> None:
    from types import SimpleNamespace

    rng = torch.Generator().manual_seed(3)
    examples = []
    for n in range(12):
        length = int(torch.randint(5, 40, (1,), generator=rng))
        ids = torch.randint(0, 50, (length,), generator=rng).tolist()
        examples.append(SimpleNamespace(input_ids=ids, labels=[x if k % 3 else -100 for k, x in enumerate(ids)]))
    small = packed_batches(examples, 64, 1, seed=7)
    big = packed_batches(examples, 64, 2, seed=7)
    for k, want in enumerate(big):
        got = join_micro_batches(small[2 * k:2 * k + 2])
        assert torch.equal(got.input_ids, want.input_ids) and torch.equal(got.labels, want.labels)
        assert torch.equal(got.position_ids, want.position_ids)
        assert (got.n_tokens, got.n_trained) == (want.n_tokens, want.n_trained)
    padded = small[0].__class__(small[0].input_ids, small[0].labels, None, torch.ones_like(small[0].input_ids), 1, 1)
    with pytest.raises(ValueError, match="packed"):
        join_micro_batches([padded, padded])


_SAME = {"lora.dropout": 0.0, "training.scheduler": "constant", "training.warmup_steps": 0,
         "training.eval_every": 0, "training.save_every": 0, "training.max_steps": 4, "training.grad_accum": 2}


def _force_plan(monkeypatch, merge: int, keep: int) -> None:
    """Replaces the planner's choice (it needs CUDA's memory counters) by a fixed plan."""
    from qlora_studio.train.offload import keep_layers

    def after_step(self) -> None:
        if self.pending:
            self.pending = False
            self.plan = Plan(merge=merge, keep=keep, layers=self.plan.layers, predicted_peak=1, budget=2)
            keep_layers(self.model, keep)

    monkeypatch.setattr(plan_mod.Planner, "after_step", after_step)
    monkeypatch.setattr(plan_mod.Planner, "__init__", _init_active(plan_mod.Planner.__init__))


def _init_active(real):
    def init(self, model, recipe, log, *, active, dropout_copies=True):
        real(self, model, recipe, log, active=True, dropout_copies=dropout_copies)
    return init


def _train(tiny_dir: Path, tmp_path: Path, name: str) -> tuple[dict[int, tuple[float, float]], list[dict]]:
    from qlora_studio.train import run_training

    recipe = write_recipe_variant(tiny_dir, name, {**_SAME, "output.run_name": name})
    run = run_training(recipe, output_dir=tmp_path / "runs", run_id=name)
    events = read_events(run)
    metrics = {e["data"]["step"]: (e["data"]["loss"], e["data"]["grad_norm"]) for e in events if e["type"] == "metrics"}
    return metrics, events


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for step in a:
        for x, y in zip(a[step], b[step]):
            assert math.isfinite(x) and abs(x - y) <= 1e-4 * abs(y) + 1e-6, (step, a[step], b[step])


def test_a_planned_run_trains_as_the_recipe_says(tiny_dir: Path, tmp_path: Path, monkeypatch) -> None:
    ref, _ = _train(tiny_dir, tmp_path, "recipe-plan")
    _force_plan(monkeypatch, merge=2, keep=1)
    calls: list[int] = []
    from qlora_studio.train.qlora import QLoRARun

    real = QLoRARun._forward_backward
    monkeypatch.setattr(QLoRARun, "_forward_backward",
                        lambda self, micro, n: calls.append(len(micro)) or real(self, micro, n))
    got, _ = _train(tiny_dir, tmp_path, "forced-plan")
    assert calls == [2, 1, 1, 1]  # the first step as written, then one joined forward a step
    _same(got, ref)


def test_a_planned_step_out_of_memory_is_retaken_as_the_recipe_says(tiny_dir: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    ref, _ = _train(tiny_dir, tmp_path, "recipe-plan")
    _force_plan(monkeypatch, merge=2, keep=2)
    from qlora_studio.train.qlora import QLoRARun

    real = QLoRARun._forward_backward
    calls: list[int] = []

    def injected_oom(self, micro, n):  # a fault injected the first time a joined forward runs
        calls.append(len(micro))
        if len(micro) == 1 and calls.count(1) == 1:
            real(self, micro, n)  # partly accumulated gradients must not leak into the retake
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(self, micro, n)

    monkeypatch.setattr(QLoRARun, "_forward_backward", injected_oom)
    got, events = _train(tiny_dir, tmp_path, "oom-plan")
    assert calls == [2, 1, 2, 2, 2]  # step 2 retaken as written; the plan stays off
    _same(got, ref)
    warnings = [e["data"]["message"] for e in events if e["type"] == "log" and e["data"].get("level") == "warning"]
    assert any("ran out of memory" in m and "memory_budget_gib" in m for m in warnings), warnings


def test_kept_layers_skip_the_offloaded_replay_and_train_the_same(monkeypatch) -> None:
    from conftest import lora_loss_and_grads, small_lora_llama

    from qlora_studio.train import offload

    ids = torch.randint(0, 97, (1, 23), generator=torch.Generator().manual_seed(2))
    _, ref = lora_loss_and_grads(small_lora_llama(False, 0.2), ids)
    saved = []
    real = offload._to_host
    monkeypatch.setattr(offload, "_to_host", lambda x: saved.append(x.shape) or real(x))
    _, got = lora_loss_and_grads(small_lora_llama(True, 0.2, keep=2), ids)
    assert len(saved) == 1  # only the third layer was checkpointed (its input offloaded)
    for name in ref:
        assert torch.allclose(got[name], ref[name], atol=1e-6, rtol=1e-5), name


def test_the_planner_reads_the_first_step_and_applies_its_choice_with_mocked_cuda_counters(monkeypatch) -> None:
    """No CUDA here: torch.cuda's memory counters are mocked; the choice, the layer flags and the log are real."""
    from types import SimpleNamespace

    from transformers import LlamaConfig, LlamaForCausalLM

    from qlora_studio.recipe import recipe_from_text
    from qlora_studio.train.offload import decoder_layers

    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=4, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128)
    with torch.device("meta"):
        base = LlamaForCausalLM(cfg)
    recipe = recipe_from_text("base_model: org/m\ndata:\n  train: t.jsonl\n  max_seq_len: 2048\n"
                              "training: {micro_batch_size: 2, grad_accum: 2, memory_budget_gib: 24}\n", "/tmp")
    counters = {"allocated": 6 * GIB}
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: counters["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 6 * GIB + 2 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 9 * GIB)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (100 * GIB, 141 * GIB))
    logs: list[str] = []
    planner = plan_mod.Planner(base, recipe, lambda m, level="info": logs.append(m), active=True)
    planner.before_step()
    planner.after_step()
    p = planner.plan
    # 24 GiB budget - 1 GiB context, 10% headroom; 8 GiB measured; 4,096 tokens x 69,632 values x 2 bytes a layer.
    per_layer = 4096 * (4 * 4096 + 48 * 128 + 32 * 128 + 3 * 14336) * 2
    assert p.keep == min(4, int((23 * GIB * 0.9 - 8 * GIB) // per_layer)) == 4
    assert p.merge == 2  # both fit: 6 + 2 x 2 GiB + 4 layers of 8,192 tokens
    assert [getattr(m, "_qlora_keep", False) for m in decoder_layers(base)] == [True] * 4
    assert len(logs) == 1 and logs[0].startswith("memory plan: 2 micro-batches of 2 rows joined")
    assert "of a 23.0 GiB budget" in logs[0]
    planner.after_step()  # once per process
    assert len(logs) == 1
    planner.drop("CUDA out of memory (mocked)")
    assert planner.plan.is_recipe and not any(getattr(m, "_qlora_keep", False) for m in decoder_layers(base))
    off = plan_mod.Planner(base, SimpleNamespace(training=SimpleNamespace(memory_budget_gib=0)), logs.append, active=True)
    assert not off.pending
    # A budget below the recipe's own first step: the recipe's plan, and a warning that says what to change.
    small = recipe_from_text("base_model: org/m\ndata:\n  train: t.jsonl\n  max_seq_len: 2048\n"
                             "training: {micro_batch_size: 2, grad_accum: 2, memory_budget_gib: 6}\n", "/tmp")
    warned: list[tuple[str, str]] = []
    tight = plan_mod.Planner(base, small, lambda m, level="info": warned.append((level, m)), active=True)
    tight.before_step()
    tight.after_step()
    assert tight.plan.is_recipe
    assert [lvl for lvl, _ in warned] == ["warning", "info"] and "micro_batch_size" in warned[0][1], warned
