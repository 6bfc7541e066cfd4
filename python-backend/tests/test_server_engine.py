"""Supervisor faults with the REAL engine on the tiny model (NF4 on the CPU), through the real
server: SIGKILL -> interrupted; resume under a host memory limit -> failed (OOM) with the settings
to change, server up, checkpoint intact; resume without the limit -> continues from the checkpoint
to completion. The client's event sequence equals events.jsonl throughout."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

import yaml

from test_server_harness import ServerProc, read_log


def _long_chat_recipe(tiny_dir: Path, tmp: Path) -> Path:
    """The tiny model on long conversations in big micro batches: a few seconds a step, and well
    over a gigabyte of activations, so a memory limit that loading fits in is broken by training."""
    rng = random.Random(0)
    words = "what is the capital of Portugal Nepal France Spain please tell me give".split()
    data = tmp / "long.jsonl"
    with data.open("w") as f:
        for _ in range(96):
            q = " ".join(rng.choice(words) for _ in range(120))
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Lisbon"}]}) + "\n")
    recipe = {
        "base_model": str(tiny_dir / "model"),
        "lora": {"r": 8, "target_modules": "all-linear"},
        "data": {"train": str(data), "format": "chat", "chat_template": "tokenizer", "train_on": "assistant",
                 "max_seq_len": 512, "packing": False},
        "training": {"max_steps": 2, "micro_batch_size": 16, "grad_accum": 1, "lr": 1e-3, "gradient_checkpointing": False,
                     "log_every": 1, "save_every": 1, "eval_every": 1000},
    }
    p = tmp / "long.qlora.yaml"
    p.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return p


def _settled(c, run_id: str) -> dict:
    """The run's RunInfo once its process has exited (an end state is written just before exit)."""
    deadline = time.monotonic() + 30
    while True:
        info = {r["run_id"]: r for r in c.ok("run.list", {})["runs"]}[run_id]
        if info["pid"] is None or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(f.relative_to(d).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_sigkill_oom_and_resume_with_the_real_engine(tiny_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    recipe = _long_chat_recipe(tiny_dir, tmp_path)
    srv = ServerProc(runs, fake_engine=False, env={"MKL_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"})
    try:
        c = srv.client()
        pid = c.ok("run.start", {"recipe_path": str(recipe), "run_id": "real"})["pid"]
        c.ok("run.attach", {"run_id": "real", "after_seq": 0})
        while not any(e["type"] == "checkpoint" for e in c.events.get("real", [])):
            c.pump(0.2)
            assert not any(e["type"] == "status" and e["data"]["state"] in ("failed", "completed") for e in c.events.get("real", [])), c.events
        os.kill(pid, signal.SIGKILL)
        ev = c.wait_state("real", ("interrupted",), timeout=60)
        assert "SIGKILL" in ev["data"]["reason"] and "resume" in ev["data"]["reason"]
        info = _settled(c, "real")
        assert info["state"] == "interrupted" and info["resumable"]
        ck_dir = runs / "real" / "checkpoints"
        steps = sorted(int(p.name.split("-")[1]) for p in ck_dir.glob("step-*"))
        assert steps, "a checkpoint was announced"
        last = ck_dir / f"step-{steps[-1]}"
        before = _digest(last)

        # Resume under a host memory limit: loading fits, the first training step does not.
        c.ok("run.start", {"recipe_path": str(recipe), "run_id": "real", "resume": True, "memory_limit_mb": 800})
        ev = c.wait_state("real", ("failed",), timeout=120)
        errors = [e for e in c.events["real"] if e["type"] == "error"]
        assert errors and errors[-1]["data"]["kind"] == "oom"
        text = errors[-1]["data"]["message"] + " " + errors[-1]["data"].get("hint", "")
        assert "memory" in text.lower() and "micro_batch_size" in text and "max_seq_len" in text
        info = _settled(c, "real")  # the server is still up
        assert info["state"] == "failed" and "micro_batch_size" in info["reason"] and info["resumable"]
        assert srv.proc.poll() is None
        assert _digest(last) == before, "the last checkpoint must be untouched by the failed run"

        # Resume without the limit: continues after the checkpoint and completes.
        n_before = len(c.events["real"])
        c.ok("run.start", {"recipe_path": str(recipe), "run_id": "real", "resume": True})
        c.wait_state("real", ("completed",), timeout=180)
        c.pump(0.3)
        resumed = c.events["real"][n_before:]
        first_step = next(e["data"]["step"] for e in resumed if e["type"] == "metrics")
        assert first_step == steps[-1] + 1
        log = read_log(runs, "real")
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        assert c.events["real"] == log  # 0 lost, 0 duplicated across all three processes
    finally:
        srv.stop()
