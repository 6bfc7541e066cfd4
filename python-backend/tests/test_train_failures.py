"""How runs fail: SIGKILL, out of memory, bad recipe, bad data, missing base model."""
from __future__ import annotations

import hashlib
import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import cli, cli_popen, engine_env, read_events, write_recipe_variant

from qlora_studio.rundir import latest_checkpoint


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _assert_peft_loads(tiny_dir: Path, ck: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir / "model"), ck)
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and all(torch.isfinite(p).all() for p in lora)
    assert any(p.abs().sum() > 0 for p in lora)  # trained, not the zero init


def test_sigkill_leaves_a_loadable_checkpoint_and_resumes(tiny_dir, tmp_path):
    recipe = write_recipe_variant(tiny_dir, "kill", {"training.max_steps": 40, "training.save_every": 1,
                                                     "training.eval_every": 0})
    proc = cli_popen("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "k")
    run_dir = tmp_path / "k"
    deadline = time.time() + 240
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        events = read_events(run_dir) if (run_dir / "events.jsonl").exists() else []
        if sum(e["type"] == "checkpoint" for e in events) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ck = latest_checkpoint(run_dir)
    assert ck is not None
    step = json.loads((ck / "trainer_state.json").read_text())["step"]
    assert ck.name == f"step-{step}" and step >= 3
    _assert_peft_loads(tiny_dir, ck)

    # The killed run resumes: stale temp folders are ignored and the log continues without a gap.
    res = cli("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "k", "--resume",
              "--max-steps", str(step + 2))
    assert res.returncode == 0, res.stderr[-3000:]
    events = read_events(run_dir)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert max(e["data"]["step"] for e in events if e["type"] == "metrics") == step + 2
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]


def _vm_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1])
    return 0


def test_out_of_memory_fails_cleanly_and_keeps_the_checkpoint(tiny_dir, tmp_path):
    recipe = write_recipe_variant(tiny_dir, "oom", {"training.max_steps": 2, "training.save_every": 1,
                                                    "data.eval": None})
    # 1. A normal run writes checkpoints; its peak address space is the budget that loading needs.
    proc = cli_popen("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "o")
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, _vm_peak_kib(proc.pid))
        except OSError:
            pass
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    run_dir = tmp_path / "o"
    ck = latest_checkpoint(run_dir)
    assert ck is not None and ck.name == "step-2"
    before = _tree_hash(ck)

    # 2. Resume it with one micro-batch holding the whole dataset, under an address-space limit
    #    that loading fits in but that forward pass does not.
    frozen = run_dir / "recipe.qlora.yaml"
    doc = yaml.safe_load(frozen.read_text())
    doc["training"]["micro_batch_size"] = 64
    doc["data"]["max_seq_len"] = 4096
    frozen.write_text(yaml.safe_dump(doc))
    limit = (peak + 250 * 1024) * 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    res = subprocess.run([sys.executable, "-m", "qlora_studio.cli", "run", str(recipe), "--output-dir", str(tmp_path),
                          "--run-id", "o", "--resume", "--max-steps", "4"], capture_output=True, text=True,
                         env=engine_env(), preexec_fn=cap, timeout=300)
    assert res.returncode == 4, (res.returncode, res.stderr[-3000:])
    assert "training.micro_batch_size" in res.stderr and "data.max_seq_len" in res.stderr
    events = read_events(run_dir)
    error = [e["data"] for e in events if e["type"] == "error"][-1]
    assert error["kind"] == "oom"
    for setting in ("training.micro_batch_size", "data.max_seq_len", "training.gradient_checkpointing", "lora.r"):
        assert setting in error["hint"]
    assert [e["data"]["state"] for e in events if e["type"] == "status"][-1] == "failed"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    assert latest_checkpoint(run_dir) == ck and _tree_hash(ck) == before
    _assert_peft_loads(tiny_dir, ck)


def test_bad_recipe_exits_2_with_lines(tiny_dir, tmp_path):
    bad = tiny_dir / "bad.qlora.yaml"
    bad.write_text((tiny_dir / "tiny.qlora.yaml").read_text()
                   .replace("lr: 3.0e-3", "lr: -1").replace("micro_batch_size: 1", "micro_batch_size: lots"))
    lines = bad.read_text().splitlines()
    lr_line = next(i for i, s in enumerate(lines, 1) if "lr: -1" in s)
    mb_line = next(i for i, s in enumerate(lines, 1) if "micro_batch_size: lots" in s)
    res = cli("run", str(bad), "--output-dir", str(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    assert f":{lr_line}:" in res.stderr and f":{mb_line}:" in res.stderr
    assert "training.lr" in res.stderr and "training.micro_batch_size" in res.stderr
    assert list(tmp_path.iterdir()) == []  # refused before a run folder is made, like the server's run.start
    res = cli("validate", str(bad))
    assert res.returncode == 2 and f":{lr_line}:" in res.stderr


def test_bad_data_exits_3_with_lines(tiny_dir, tmp_path):
    rows = (tiny_dir / "data" / "train.jsonl").read_text().splitlines()
    rows[4] = '{"messages": [{"role": "user", "content": "broken json"'
    rows[9] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    bad = tmp_path / "bad_train.jsonl"  # outside the shared tiny folder, which other tests hash
    bad.write_text("\n".join(rows) + "\n")
    recipe = write_recipe_variant(tiny_dir, "baddata", {"data.train": str(bad)})
    res = cli("run", str(recipe), "--output-dir", str(tmp_path / "runs"), "--run-id", "b")
    assert res.returncode == 3, res.stderr[-2000:]
    assert "bad_train.jsonl:5:" in res.stderr and "bad_train.jsonl:10:" in res.stderr
    error = [e["data"] for e in read_events(tmp_path / "runs" / "b") if e["type"] == "error"][-1]
    assert error["kind"] == "bad_data" and "bad_train.jsonl:5:" in error["message"]


def test_missing_base_model_is_a_clear_error(tiny_dir, tmp_path):
    recipe = write_recipe_variant(tiny_dir, "nomodel", {"base_model": "./no-such-model"})
    res = cli("run", str(recipe), "--output-dir", str(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "no-such-model" in res.stderr and "does not exist" in res.stderr
