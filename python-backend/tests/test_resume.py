"""SIGTERM stops a run with a checkpoint; --resume continues it exactly (same steps, same losses)."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from conftest import cli, cli_popen, read_events


def _wait_for_step(run_dir: Path, step: int, proc, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        events = read_events(run_dir) if (run_dir / "events.jsonl").exists() else []
        if any(e["type"] == "metrics" and e["data"]["step"] >= step for e in events):
            return
        time.sleep(0.2)
    raise AssertionError(f"run never reached step {step}")


def test_sigterm_then_resume_matches_uninterrupted(trained_run, tiny_dir):
    runs: Path = trained_run["runs"]
    recipe = str(tiny_dir / "tiny.qlora.yaml")
    proc = cli_popen("run", recipe, "--output-dir", str(runs), "--run-id", "resumed")
    run_dir = runs / "resumed"
    _wait_for_step(run_dir, 8, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "--resume" in err

    first = read_events(run_dir)
    stopped = [e for e in first if e["type"] == "status"][-1]["data"]
    assert stopped["state"] == "stopped" and stopped["reason"] == "SIGTERM"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "stopped"
    stop_step = max(e["data"]["step"] for e in first if e["type"] == "metrics")
    assert 8 <= stop_step < 60
    ck = [e["data"] for e in first if e["type"] == "checkpoint"][-1]
    assert ck["step"] == stop_step and Path(ck["path"]).name == f"step-{stop_step}"
    assert json.loads((Path(ck["path"]) / "trainer_state.json").read_text())["step"] == stop_step

    res = cli("run", recipe, "--output-dir", str(runs), "--run-id", "resumed", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]

    events = read_events(run_dir)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # seq continues across the resume
    resumed = {e["data"]["step"]: e["data"]["loss"] for e in events if e["type"] == "metrics"}
    reference = {e["data"]["step"]: e["data"]["loss"] for e in read_events(trained_run["run_dir"])
                 if e["type"] == "metrics"}
    assert sorted(resumed) == list(range(1, 61)) == sorted(reference)
    for step in range(1, 61):
        a, b = resumed[step], reference[step]
        assert abs(a - b) <= 0.01 * abs(b) + 1e-6, (step, a, b, stop_step)
    assert [e["data"]["state"] for e in events if e["type"] == "status"][-1] == "completed"
    assert any("resumed from step-" in e["data"]["message"] for e in events if e["type"] == "log")
