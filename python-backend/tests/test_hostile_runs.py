"""Faults around a run: corrupt and stranded checkpoints, a full or read-only disk, CLI edges,
SIGTERM while loading, the recipe frozen once, and a bit-exact resume with evaluation on (also
where bitsandbytes repacks 4-bit weights for inference: an AVX512-BF16 CPU, emulated here).

Real CLI processes on the tiny example. The full and read-only disks are real file systems
(tmpfs mounts; the test needs root to mount and says so when it cannot). Power loss is covered
by fault injection here: the fsync/rename order of a publish is recorded, and a checkpoint stranded
under its temp name (what a lost rename leaves) must be recovered by the next resume. Where the
machine can mount a loop device, test_hostile_power_loss.py also cuts the power on a real ext4.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import cli, cli_popen, engine_env, read_events, write_recipe_variant

from qlora_studio.rundir import latest_checkpoint


@pytest.fixture(scope="module")
def eval_run(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six steps with evaluation and a checkpoint every two steps, run to the end."""
    recipe = write_recipe_variant(tiny_dir, "evalres", {"training.max_steps": 6, "training.save_every": 2,
                                                        "training.eval_every": 2, "training.keep_checkpoints": 3})
    runs = tmp_path_factory.mktemp("evalruns")
    res = cli("run", str(recipe), "--output-dir", str(runs), "--run-id", "a")
    assert res.returncode == 0, res.stderr[-3000:]
    return {"recipe": recipe, "run_dir": runs / "a"}


AVX512_BF16 = Path(__file__).with_name("avx512bf16_cpu.py")


def avx512_bf16_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process where bitsandbytes behaves as on a CPU with AVX512-BF16 (avx512bf16_cpu.py)."""
    return subprocess.run([sys.executable, str(AVX512_BF16), *args], capture_output=True, text=True, timeout=300,
                          env=engine_env())


@pytest.fixture(scope="module")
def avx512_eval_run(eval_run: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """eval_run's recipe trained on an emulated AVX512-BF16 CPU, each evaluation probed."""
    runs = tmp_path_factory.mktemp("avx512runs")
    probe = runs / "evaluations.jsonl"
    res = avx512_bf16_cli("--probe", str(probe), "--", "run", str(eval_run["recipe"]), "--output-dir", str(runs),
                          "--run-id", "a")
    assert res.returncode == 0, res.stderr[-3000:]
    return {"recipe": eval_run["recipe"], "run_dir": runs / "a", "probe": probe}


def _resumable_copy(src: Path, root: Path, keep_steps: tuple[int, ...]) -> Path:
    """A copy of a finished run as if it had been stopped after its last kept checkpoint."""
    dst = root / src.name
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "adapter", ignore_errors=True)
    for ck in (dst / "checkpoints").iterdir():
        if ck.name.startswith("step-") and int(ck.name[5:]) not in keep_steps:
            shutil.rmtree(ck)
    info = json.loads((dst / "run.json").read_text())
    info["state"] = "stopped"
    (dst / "run.json").write_text(json.dumps(info))
    # The event log is the truth about a run's state: cut it after the last kept checkpoint and
    # end it with the `stopped` status a stop writes there.
    last = max(keep_steps)
    kept: list[dict] = []
    for line in (dst / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        kept.append(ev)
        if ev["type"] == "checkpoint" and ev["data"]["step"] == last:
            break
    stop = {**kept[-1], "seq": kept[-1]["seq"] + 1, "type": "status", "data": {"state": "stopped", "reason": "SIGTERM"}}
    (dst / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in [*kept, stop]))
    return dst


def _metrics_after(events: list[dict], step: int) -> dict[int, tuple[float, float]]:
    out = {}
    for e in events:
        if e["type"] == "metrics" and e["data"]["step"] > step:
            out[e["data"]["step"]] = (e["data"]["loss"], e["data"]["grad_norm"])
    return out


def _eval_losses(events: list[dict], after: int) -> list[float]:
    return [e["data"]["eval_loss"] for e in events if e["type"] == "eval" and e["data"]["step"] > after]


@pytest.mark.parametrize("cpu", ["this CPU", "AVX512-BF16 CPU (emulated)"])
def test_resume_with_evaluation_on_is_bit_exact(request, cpu, tmp_path):
    """Losses, gradient norms and eval losses after a resume equal an uninterrupted run's, bit for bit.

    On a CPU without AVX512-BF16 bitsandbytes never repacks 4-bit weights, so the first case holds
    even without keeping the layers on their training kernel during evaluation. The second case
    runs where bitsandbytes repacks (avx512bf16_cpu.py): an evaluation there repacks the weights
    (bf16 scales, double quantization undone), and saving the best adapter right after unpacks
    them again with re-quantized scales, so an uninterrupted run trains on other base weights
    than a resumed one unless evaluation keeps the training kernels.
    """
    emulated = cpu != "this CPU"
    ref = request.getfixturevalue("avx512_eval_run" if emulated else "eval_run")
    run = _resumable_copy(ref["run_dir"], tmp_path, (2,))
    args = ("run", str(ref["recipe"]), "--output-dir", str(tmp_path), "--run-id", "a", "--resume")
    res = avx512_bf16_cli(*args) if emulated else cli(*args)
    assert res.returncode == 0, res.stderr[-3000:]
    resumed, reference = read_events(run), read_events(ref["run_dir"])
    assert _metrics_after(resumed, 2) == _metrics_after(reference, 2) != {}
    assert _eval_losses(resumed, 2) == _eval_losses(reference, 2) != []


def test_avx512_bf16_emulation_takes_bitsandbytes_repack_path():
    """The emulation is real: a 4-bit layer in eval repacks (and keeps it), computing about the same."""
    res = subprocess.run([sys.executable, str(AVX512_BF16), "--self-check"], capture_output=True, text=True,
                         timeout=120, env=engine_env())
    assert res.returncode == 0, res.stderr[-3000:]
    check = json.loads(res.stdout.splitlines()[-1])
    assert check["repacked_after_eval"] and not check["eval_bit_equal"]
    assert check["eval_max_abs_diff"] < 0.02 * check["train_out_max_abs"]  # bf16 rounding, not another result


def test_evaluation_leaves_weights_rngs_and_data_position_as_training_had_them(avx512_eval_run, eval_run):
    """Around every evaluation (AVX512-BF16 CPU emulated): the 4-bit weights' storage and quantization
    state, which modules train (dropout), the python/numpy/torch (and CUDA) RNGs and the data position
    are exactly as before it; and training there is bit-identical to training on this CPU."""
    probes = [json.loads(line) for line in avx512_eval_run["probe"].read_text().splitlines()]
    assert [p["step"] for p in probes] == [2, 4, 6]
    for p in probes:
        assert p["before"]["layers"], "no 4-bit layer was probed"
        changed = sorted(k for k in p["before"] if p["before"][k] != p["after"][k])
        assert changed == [], f"evaluation at step {p['step']} changed {changed}"
    emulated, plain = read_events(avx512_eval_run["run_dir"]), read_events(eval_run["run_dir"])
    assert _metrics_after(emulated, 0) == _metrics_after(plain, 0)
    assert _eval_losses(emulated, 0) == _eval_losses(plain, 0)


@pytest.mark.parametrize("damage", ["truncate", "delete", "bitflip"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_intact_one(eval_run, tmp_path, damage):
    run = _resumable_copy(eval_run["run_dir"], tmp_path, (2, 4))
    newest = run / "checkpoints" / "step-4"
    target = newest / ("optimizer.pt" if damage != "bitflip" else "adapter_model.safetensors")
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete":
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[-7] ^= 0x10  # inside the last weight: the file still parses
        target.write_bytes(bytes(data))
    res = cli("run", str(eval_run["recipe"]), "--output-dir", str(tmp_path), "--run-id", "a", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    logs = [e["data"]["message"] for e in read_events(run) if e["type"] == "log"]
    assert any("skipped the corrupt checkpoint step-4" in m for m in logs)
    assert any("resumed from step-2" in m for m in logs)
    assert _metrics_after(read_events(run), 2) == _metrics_after(read_events(eval_run["run_dir"]), 2)


def test_resume_recovers_a_stranded_checkpoint_despite_a_broken_sibling_run(eval_run, tmp_path):
    run = _resumable_copy(eval_run["run_dir"], tmp_path, (2, 4))
    ck = run / "checkpoints"
    os.rename(ck / "step-4", ck / ".tmp-step-4")  # the rename that a power cut undid
    os.rename(ck / "step-2", ck / ".tmp-step-2")
    (ck / ".tmp-step-2" / "checksums.json").unlink()  # and one never finished
    (ck / "step-1").mkdir()
    (ck / "step-1" / "trainer_state.json").write_text("{}")  # a checkpoint with missing files
    (tmp_path / "zz-broken").mkdir()
    (tmp_path / "zz-broken" / "run.json").write_text('{"state": "runn')
    res = cli("run", str(eval_run["recipe"]), "--output-dir", str(tmp_path), "--resume")  # no --run-id
    assert res.returncode == 0, res.stderr[-3000:]
    logs = [e["data"]["message"] for e in read_events(run) if e["type"] == "log"]
    assert any("recovered the complete checkpoint step-4" in m for m in logs)
    assert any("ignored the incomplete checkpoint .tmp-step-2" in m for m in logs)
    assert any("resumed from step-4" in m for m in logs)
    assert not [p for p in ck.iterdir() if p.name.startswith(".")]


def test_publish_flushes_files_and_both_directories_around_the_rename(tmp_path, monkeypatch):
    from qlora_studio import publish

    calls: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(publish.os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                         real_fsync(fd))[1])
    monkeypatch.setattr(publish.os, "rename", lambda a, b: (calls.append(("rename", str(b))), real_rename(a, b))[1])
    tmp = tmp_path / ".tmp-x"
    (tmp / "sub").mkdir(parents=True)
    (tmp / "a.bin").write_bytes(b"a")
    (tmp / "sub" / "b.bin").write_bytes(b"b")
    publish.publish_dir(tmp, tmp_path / "x")
    rename_at = calls.index(("rename", str(tmp_path / "x")))
    before = {p for op, p in calls[:rename_at] if op == "fsync"}
    assert {str(tmp / "a.bin"), str(tmp / "sub" / "b.bin"), str(tmp / "sub"), str(tmp)} <= before
    assert ("fsync", str(tmp_path)) in calls[rename_at:]


def test_cli_edges_are_usage_errors_without_a_trace(tiny_dir, tmp_path):
    recipe = str(tiny_dir / "tiny.qlora.yaml")
    for steps in ("-5", "0"):
        res = cli("run", recipe, "--output-dir", str(tmp_path), "--max-steps", steps)
        assert res.returncode == 2 and "--max-steps" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not list(tmp_path.iterdir())  # nothing was started, let alone published as completed
    res = cli("preview", recipe, "--limit", "-1")
    assert res.returncode == 2 and "--limit" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_sigterm_while_loading_stops_promptly_and_its_advice_works(tiny_dir, tmp_path):
    recipe = write_recipe_variant(tiny_dir, "loadstop", {"training.max_steps": 3})
    proc = cli_popen("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "l")
    deadline = time.time() + 120
    while time.time() < deadline:
        events = read_events(tmp_path / "l") if (tmp_path / "l" / "events.jsonl").exists() else []
        if any(e["type"] == "status" and e["data"]["state"] == "loading" for e in events):
            break
        time.sleep(0.01)
    t = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.time() - t < 20 and proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    if "--resume" in err:  # only promised when there is a checkpoint to resume from
        res = cli("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "l", "--resume")
        assert res.returncode == 0, res.stderr[-2000:]
    else:
        assert "start it again" in err and latest_checkpoint(tmp_path / "l") is None
        assert [e["data"]["state"] for e in read_events(tmp_path / "l") if e["type"] == "status"][-1] == "stopped"


def test_the_recipe_is_read_once_and_the_frozen_copy_is_what_trains(tiny_dir, tmp_path):
    from qlora_studio.train import run_training

    recipe = write_recipe_variant(tiny_dir, "freeze", {"training.max_steps": 2, "training.eval_every": 0,
                                                       "training.save_every": 0})
    edited = recipe.read_text().replace("max_steps: 2", "max_steps: 3")

    def edit_while_loading(ev: dict) -> None:  # the user saves the file just after the run starts
        if ev["type"] == "status" and ev["data"]["state"] == "loading":
            recipe.write_text(edited)

    run_dir = run_training(recipe, output_dir=tmp_path, run_id="f", on_event=edit_while_loading)
    steps = [e["data"]["step"] for e in read_events(run_dir) if e["type"] == "metrics"]
    frozen = yaml.safe_load((run_dir / "recipe.qlora.yaml").read_text())
    assert frozen["training"]["max_steps"] == 2 and steps == [1, 2]


def _mount_tmpfs(where: Path, size_kib: int, read_only: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size_kib}k" + (",ro" if read_only else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"needs permission to mount a small tmpfs (root): {res.stderr.strip()}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_full_disk_fails_cleanly_with_cause_and_what_to_do(eval_run, tmp_path):
    ck = eval_run["run_dir"] / "checkpoints" / "step-2"
    ck_kib = sum(p.stat().st_size for p in ck.rglob("*") if p.is_file()) // 1024
    recipe = write_recipe_variant(Path(eval_run["recipe"]).parent, "fulldisk",
                                  {"training.max_steps": 6, "training.save_every": 1, "training.eval_every": 0,
                                   "training.keep_checkpoints": 5})
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, int(ck_kib * 1.6) + 256)  # room for one checkpoint, not two
    try:
        res = cli("run", str(recipe), "--output-dir", str(disk), "--run-id", "d")
        assert res.returncode == 1, res.stderr[-3000:]
        assert "disk is full" in res.stderr and "Free space" in res.stderr
        run_dir = disk / "d"
        raw = (run_dir / "events.jsonl").read_bytes()
        assert raw.endswith(b"\n") and all(json.loads(line) for line in raw.splitlines())
        events = read_events(run_dir)
        error = [e["data"] for e in events if e["type"] == "error"][-1]
        assert "disk is full" in error["message"] and "Free space" in error["hint"]
        assert events[-1]["data"]["state"] == "failed"
        assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
        assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
        assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]
    finally:
        _umount(disk)


def test_read_only_run_folder_is_a_clear_failure(tiny_dir, tmp_path):
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, 1024, read_only=True)
    try:
        res = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(disk), "--max-steps", "1")
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
        assert "read-only" in res.stderr and "writable" in res.stderr
    finally:
        _umount(disk)
