"""Progress events while a run gets ready, optional trackers, the Hugging Face token kept off disk,
the engine's lock on its run folder, and data files checked at validation."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, engine_env, read_events, write_recipe_variant
from qlora_studio.progress import ProgressReporter, reporting_bar
from qlora_studio.rundir import RunDir

TOKEN = "hf_TESTTOKENnotarealtoken0123456789"


def fake_download_by_copying_a_local_file(src: Path, dst: Path, bar_cls: type, chunk: int) -> None:
    """A STAND-IN for a hub download (the hub cannot be reached here): copies a local file in
    chunks and drives the progress bar the way huggingface_hub drives `tqdm_class`."""
    size = src.stat().st_size
    with src.open("rb") as fin, dst.open("wb") as fout, bar_cls(total=size, unit="B", unit_scale=True) as bar:
        while data := fin.read(chunk):
            fout.write(data)
            bar.update(len(data))


def test_download_progress_reports_bytes_to_the_total(tmp_path: Path) -> None:
    src = tmp_path / "model.safetensors"
    src.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    events: list[dict[str, Any]] = []

    def emit(type_: str, **data: Any) -> None:
        events.append({"type": type_, **data})

    rep = ProgressReporter(emit, "model_download", "downloading tiny/model", interval=0.0)
    fake_download_by_copying_a_local_file(src, tmp_path / "copy", reporting_bar(rep), 64 * 1024)
    assert (tmp_path / "copy").read_bytes() == src.read_bytes()
    done = [e["done"] for e in events]
    assert all(e["type"] == "progress" and e["phase"] == "model_download" and e["unit"] == "bytes" for e in events)
    assert done == sorted(done) and done[-1] == src.stat().st_size and events[-1]["total"] == src.stat().st_size
    assert len(events) >= 16  # one per chunk (and the close) without throttling

    # Throttled: a slow clock lets only the first report and the final one through.
    slow: list[dict[str, Any]] = []
    rep = ProgressReporter(lambda t, **d: slow.append(d), "model_download", "x", interval=3600.0)
    fake_download_by_copying_a_local_file(src, tmp_path / "copy2", reporting_bar(rep), 64 * 1024)
    assert [d["done"] for d in slow] == [64 * 1024, src.stat().st_size]


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown progress phase"):
        ProgressReporter(lambda *a, **k: None, "warming_up", "x")


def test_run_reports_phases_writes_tensorboard_and_keeps_the_token_off_disk(tiny_dir: Path, tmp_path: Path) -> None:
    recipe = write_recipe_variant(tiny_dir, "tb", {"logging.tensorboard": True, "training.eval_every": 1})
    runs = tmp_path / "runs"
    res = subprocess.run([sys.executable, "-m", "qlora_studio.cli", "run", str(recipe), "--output-dir", str(runs),
                          "--run-id", "tb", "--max-steps", "2"], capture_output=True, text=True, timeout=600,
                         env=engine_env(HF_TOKEN=TOKEN))
    assert res.returncode == 0, res.stderr[-3000:]
    evs = read_events(runs / "tb")
    phases = [e["data"]["phase"] for e in evs if e["type"] == "progress"]
    assert phases == ["tokenizer", "data", "quantize", "lora"]
    first_running = next(i for i, e in enumerate(evs) if e["type"] == "status" and e["data"]["state"] == "running")
    assert max(i for i, e in enumerate(evs) if e["type"] == "progress") < first_running
    tb_files = list((runs / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert tb_files and sum(f.stat().st_size for f in tb_files) > 0
    # The token is in the engine's environment and nowhere else: no file of the run, no output.
    assert TOKEN not in res.stdout + res.stderr
    for f in (runs / "tb").rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f


def test_tracker_without_its_library_is_a_clear_recipe_error(tiny_dir: Path, tmp_path: Path) -> None:
    try:
        import wandb  # noqa: F401
        pytest.skip("wandb is installed here; this test needs a host without it")
    except ImportError:
        pass
    recipe = write_recipe_variant(tiny_dir, "wb", {"logging.wandb": {"project": "qlora-tests"}})
    res = cli("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "wb")
    assert res.returncode == 2, res.stderr[-2000:]
    err = [e for e in read_events(tmp_path / "wb") if e["type"] == "error"][0]["data"]
    assert err["kind"] == "bad_recipe" and "pip install 'qlora-studio[wandb]'" in err["message"]


def test_the_engine_refuses_a_run_folder_another_trainer_holds(trained_run: dict[str, Any], tmp_path: Path) -> None:
    run_dir = trained_run["run_dir"]
    before = (run_dir / "events.jsonl").read_bytes()
    with RunDir(run_dir).lock():  # another trainer (a CLI run) holds the folder
        res = cli("run", str(run_dir / "recipe.qlora.yaml"), "--run-dir", str(run_dir), "--resume", timeout=120)
    assert res.returncode == 5 and "another training process" in res.stderr
    assert (run_dir / "events.jsonl").read_bytes() == before  # not one event written


def test_validate_reports_a_missing_data_file_at_its_line(tiny_dir: Path, tmp_path: Path) -> None:
    recipe = write_recipe_variant(tiny_dir, "nodata", {"data.train": "./data/nope.jsonl"})
    res = cli("validate", str(recipe))
    assert res.returncode == 2
    line = next(i for i, text in enumerate(recipe.read_text().splitlines(), 1) if "nope.jsonl" in text)
    assert f":{line}:" in res.stderr and "data.train" in res.stderr and "data file not found" in res.stderr
    res = cli("run", str(recipe), "--output-dir", str(tmp_path), "--run-id", "nd")
    assert res.returncode == 2 and "data file not found" in res.stderr
    assert f":{line}:" in res.stderr
    assert not (tmp_path / "nd").exists()  # a recipe that cannot train makes no run folder
