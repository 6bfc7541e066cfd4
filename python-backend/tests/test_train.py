"""The training engine on the tiny example: real NF4 base on the CPU, our loop, the run directory."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import read_events

from qlora_studio.rundir import list_checkpoints


def test_loss_falls_and_run_completes(trained_run):
    run_dir: Path = trained_run["run_dir"]
    assert trained_run["stdout"].strip().endswith(str(run_dir))
    events = read_events(run_dir)
    losses = [e["data"]["loss"] for e in events if e["type"] == "metrics"]
    assert len(losses) == 60  # log_every 1, max_steps 60
    assert losses[-1] < 0.6 * losses[0], (losses[0], losses[-1])
    states = [e["data"]["state"] for e in events if e["type"] == "status"]
    assert states == ["loading", "running", "saving", "completed"]
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"
    assert json.loads((run_dir / "run.json").read_text())["total_steps"] == 60


def test_event_log_is_gapless_and_complete(trained_run):
    events = read_events(trained_run["run_dir"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    m = next(e["data"] for e in events if e["type"] == "metrics")
    for key in ("step", "total_steps", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "tokens_seen", "rss_mb"):
        assert key in m, key
    assert m["tokens_per_s"] > 0 and m["rss_mb"] > 0
    evals = [e["data"] for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [20, 40, 60]  # eval_every 20, plus the end
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]
    assert any("torch AdamW" in e["data"]["message"] for e in events if e["type"] == "log")
    # lr follows warmup then cosine to ~0
    lrs = [e["data"]["lr"] for e in events if e["type"] == "metrics"]
    assert lrs[0] < lrs[5] and lrs[-1] < 0.01 * max(lrs)


def test_run_directory_layout(trained_run):
    run_dir: Path = trained_run["run_dir"]
    assert (run_dir / "recipe.qlora.yaml").read_text() == Path(json.loads(
        (run_dir / "run.json").read_text())["recipe_path"]).read_text()
    adapter = run_dir / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "README.md", "qlora_studio.json"):
        assert (adapter / name).exists(), name
    steps = [s for s, _ in list_checkpoints(run_dir)]
    assert steps == [40, 60]  # keep_checkpoints: 2
    ck = run_dir / "checkpoints" / "step-60"
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt", "trainer_state.json", "adapter_model.safetensors"):
        assert (ck / name).exists(), name
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["step"] == 60 and state["total_steps"] == 60
    assert (run_dir / "checkpoints" / "best" / "adapter_model.safetensors").exists()
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    card = (run_dir / "README.md").read_text()
    assert "<|im_start|>user" in card and "best_eval_loss" in card and "checkpoints/best" in card
    assert "AutoPeftModelForCausalLM" in card and "base_model: ./model" in card


def test_checkpoint_loads_with_peft(trained_run, tiny_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir / "model")
    model = PeftModel.from_pretrained(base, trained_run["run_dir"] / "checkpoints" / "best")
    assert any("lora_A" in n for n, _ in model.named_parameters())
