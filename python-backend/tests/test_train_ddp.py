"""Data-parallel training for real: 2 processes (torch.distributed.run, gloo on the CPU) take the same
optimizer steps as 1 process at the same global batch, rank 0 alone writes the run, and a
data-parallel run resumes from its checkpoint.

Dropout is 0 and the schedule constant so the two layouts must agree to rounding: with dropout
each rank draws its own masks, which is right for training but not comparable step by step.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import cli, read_events, write_recipe_variant

_SAME = {"lora.dropout": 0.0, "training.scheduler": "constant", "training.warmup_steps": 0,
         "training.eval_every": 0, "training.save_every": 3, "training.max_steps": 8, "output.run_name": "ddp"}


def _losses(run_dir: Path) -> dict[int, float]:
    return {e["data"]["step"]: e["data"]["loss"] for e in read_events(run_dir) if e["type"] == "metrics"}


def test_two_gloo_ranks_match_one_process_and_resume(tiny_dir: Path, tmp_path: Path) -> None:
    single = write_recipe_variant(tiny_dir, "ddp-single", {**_SAME, "training.grad_accum": 2})
    double = write_recipe_variant(tiny_dir, "ddp-double", {**_SAME, "training.grad_accum": 1,
                                                          "distributed": {"strategy": "ddp", "gpus": 2}})
    runs = tmp_path / "runs"

    one = cli("run", str(single), "--output-dir", str(runs), "--run-id", "one")
    assert one.returncode == 0, one.stderr[-3000:]
    # 2 ranks from the recipe's distributed section; stopped after 5 of 8 steps, then resumed.
    two = cli("run", str(double), "--output-dir", str(runs), "--run-id", "two", "--max-steps", "5")
    assert two.returncode == 0, two.stderr[-3000:] + two.stdout[-2000:]
    assert two.stdout.strip().splitlines()[-1].endswith("two"), two.stdout  # rank 0 alone prints the run dir
    assert two.stdout.count(str(runs / "two")) == 1
    resumed = cli("run", str(double), "--output-dir", str(runs), "--run-id", "two", "--max-steps", "8", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    ref, got = _losses(runs / "one"), _losses(runs / "two")
    assert sorted(ref) == sorted(got) == list(range(1, 9))
    for step in ref:
        assert math.isfinite(got[step])
        assert abs(got[step] - ref[step]) <= 1e-4 * abs(ref[step]) + 1e-6, (step, got[step], ref[step])
    assert ref[8] < ref[1]  # it trains, and the comparison is not between two flat lines

    events = read_events(runs / "two")
    # One writer: seq has no gaps or repeats, and each step is reported once.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    steps = [e["data"]["step"] for e in events if e["type"] == "metrics"]
    assert steps == sorted(set(steps))
    logs = [e["data"]["message"] for e in events if e["type"] == "log"]
    assert any("data parallel: 2 processes, 2 rows per optimizer step" in m for m in logs)
    assert any("resumed from step-5" in m for m in logs)  # the 5-step run ends with a checkpoint
    ckpts = sorted(p.name for p in (runs / "two" / "checkpoints").iterdir())
    assert "step-8" in ckpts and not any(p.startswith(".tmp") for p in ckpts)
    assert (runs / "two" / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((runs / "two" / "run.json").read_text())["state"] == "completed"


def test_more_gpus_than_the_machine_has_is_refused_with_the_fix(tiny_dir: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count() + 1
        res = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(tmp_path), "--gpus", str(n))
        assert res.returncode == 2 and "lower distributed.gpus" in res.stderr
    res = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(tmp_path), "--gpus", "0")
    assert res.returncode == 2 and "--gpus takes a count of 1 or more" in res.stderr


def test_fsdp_is_refused_with_what_to_do(tiny_dir: Path) -> None:
    from qlora_studio.recipe import load_recipe
    from qlora_studio.train.distributed import Dist
    from qlora_studio.train.qlora import QLoRARun

    def check(name: str, storage: str) -> str:
        path = write_recipe_variant(tiny_dir, name, {"distributed": {"strategy": "fsdp", "gpus": 2},
                                                     "quantization.quant_storage_dtype": storage})
        run = QLoRARun(path, output_dir=None, max_steps=None, run_id=None, resume=False, on_event=None)
        run.dist = Dist(rank=0, world=2, local_rank=0)
        try:
            run._check_distributed(load_recipe(path))
        except ValueError as e:
            return str(e)
        raise AssertionError("fsdp was accepted")

    assert "quant_storage_dtype equal to the compute dtype" in check("fsdp-u8", "uint8")
    assert "use strategy: ddp" in check("fsdp-bf16", "bfloat16")


def test_a_stop_signal_to_the_cli_stops_every_rank_with_a_checkpoint(tiny_dir: Path, tmp_path: Path) -> None:
    """What the server's Stop does (SIGTERM to the CLI process alone): the ranks hear it through the
    launcher, checkpoint at the next step and stop; the CLI exits 130 like a one-process run."""
    import os
    import signal
    import time

    from conftest import cli_popen

    recipe = write_recipe_variant(tiny_dir, "ddp-stop", {**_SAME, "training.grad_accum": 1, "training.max_steps": 400,
                                                        "training.save_every": 0, "output.run_name": "ddp-stop"})
    runs = tmp_path / "runs"
    proc = cli_popen("run", str(recipe), "--output-dir", str(runs), "--run-id", "stop", "--gpus", "2",
                     start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if (runs / "stop" / "events.jsonl").exists() and any(e["type"] == "metrics" for e in read_events(runs / "stop")):
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
        os.kill(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    state = json.loads((runs / "stop" / "run.json").read_text())
    assert state["state"] == "stopped", state
    assert any(p.name.startswith("step-") for p in (runs / "stop" / "checkpoints").iterdir())
    with pytest.raises(ProcessLookupError):  # no rank (or launcher) outlived the CLI
        os.killpg(proc.pid, 0)
