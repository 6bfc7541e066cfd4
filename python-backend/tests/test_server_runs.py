"""Run supervision against the real server, with the fake engine (a test double of the training
process: same command line, same run directory, real EventWriter) so the protocol paths run fast.
The same faults against the real engine on the tiny model are in test_server_engine.py."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from test_server_harness import Client, ServerProc, make_recipe, read_log


def _seqs(evs: list[dict]) -> list[int]:
    return [e["seq"] for e in evs]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


def test_attach_replays_then_streams_without_gaps_through_20_cuts(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "400", "FAKE_ENGINE_RATE": "150", "FAKE_ENGINE_LOGS_PER_STEP": "1"})
    try:
        c = srv.client()
        info = c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "cuts"})
        assert info["run_id"] == "cuts" and info["pid"] and info["state"] in ("queued", "loading", "running")
        seen: list[dict] = []
        for cut in range(20):
            c.ok("run.attach", {"run_id": "cuts", "after_seq": seen[-1]["seq"] if seen else 0})
            c.pump(0.08 + 0.01 * (cut % 5))
            seen += c.events.pop("cuts", [])
            c.ws.socket.close()  # cut the connection hard, no close handshake
            c = srv.client()
        c.ok("run.attach", {"run_id": "cuts", "after_seq": seen[-1]["seq"]})
        c.wait_state("cuts", ("completed",), timeout=60)
        c.pump(0.3)
        seen += c.events.pop("cuts", [])
        log = read_log(runs, "cuts")
        assert _seqs(seen) == list(range(1, len(log) + 1))  # 0 lost, 0 duplicated
        assert seen == log  # and byte-for-byte the same events
        # A second client watching the same run from scratch gets the same sequence.
        other = srv.client()
        other.ok("run.attach", {"run_id": "cuts", "after_seq": 0})
        other.pump(0.3)
        assert other.events["cuts"] == log
        listed = {r["run_id"]: r for r in other.ok("run.list", {})["runs"]}
        assert listed["cuts"]["state"] == "completed" and listed["cuts"]["step"] == 400
        assert listed["cuts"]["last_seq"] == len(log) and listed["cuts"]["adapter_path"].endswith("adapter")
    finally:
        srv.stop()


def test_two_clients_watch_live_and_stop_then_kill(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "50"})
    try:
        a, b = srv.client(), srv.client()
        a.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "s1"})
        for c in (a, b):
            c.ok("run.attach", {"run_id": "s1", "after_seq": 0})
        a.pump(0.5)
        assert a.ok("run.stop", {"run_id": "s1"}) == {"run_id": "s1", "action": "signalled"}
        ev = a.wait_state("s1", ("stopped",))
        b.wait_state("s1", ("stopped",))
        assert ev["data"]["reason"]
        log = read_log(runs, "s1")
        assert a.events["s1"] == log == b.events["s1"]
        assert log[-2]["type"] == "checkpoint" and Path(log[-2]["data"]["path"]).is_dir()
        # Second stop on a run that ignores SIGTERM: kill it.
        srv2_run = a.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "s2"})
        pid = srv2_run["pid"]
        a.ok("run.attach", {"run_id": "s2", "after_seq": 0})
        a.wait_state("s2", ("running",))
        os.kill(pid, signal.SIGSTOP)  # frozen: it cannot honour the first stop
        assert a.ok("run.stop", {"run_id": "s2"})["action"] == "signalled"
        assert a.ok("run.stop", {"run_id": "s2"})["action"] == "killed"
        ev = a.wait_state("s2", ("stopped",))
        assert "killed" in ev["data"]["reason"]
        assert a.ok("run.stop", {"run_id": "s2"})["action"] == "not_running"
    finally:
        srv.stop()


def test_resume_right_after_stop_waits_for_the_exit_and_reports_queued(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "50", "FAKE_ENGINE_EXIT_DELAY": "1.5"})
    try:
        c = srv.client()
        recipe = str(make_recipe(tmp_path))
        c.ok("run.start", {"recipe_path": recipe, "run_id": "sr"})
        c.ok("run.attach", {"run_id": "sr", "after_seq": 0})
        c.wait_state("sr", ("running",))
        c.ok("run.stop", {"run_id": "sr"})
        c.wait_state("sr", ("stopped",))
        # The process still lingers here; the resume must wait for it, not answer `conflict`.
        res = c.ok("run.start", {"recipe_path": recipe, "run_id": "sr", "resume": True})
        assert res["run_id"] == "sr" and res["pid"] and res["state"] != "stopped"
        c.wait_state("sr", ("running",))
        assert c.ok("run.stop", {"run_id": "sr"})["action"] == "signalled"
    finally:
        srv.stop()


def test_sigkill_interrupts_and_resume_continues(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "60", "FAKE_ENGINE_RATE": "40", "FAKE_ENGINE_CKPT_EVERY": "5"})
    try:
        c = srv.client()
        pid = c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "k1"})["pid"]
        c.ok("run.attach", {"run_id": "k1", "after_seq": 0})
        while not any(e["type"] == "checkpoint" and e["data"]["step"] >= 10 for e in c.events.get("k1", [])):
            c.pump(0.1)
        os.kill(pid, signal.SIGKILL)
        ev = c.wait_state("k1", ("interrupted",))
        assert "SIGKILL" in ev["data"]["reason"] and "checkpoint at step" in ev["data"]["reason"]
        info = {r["run_id"]: r for r in c.ok("run.list", {})["runs"]}["k1"]
        assert info["state"] == "interrupted" and info["resumable"] and info["pid"] is None
        res = c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "resume": True})  # newest resumable of the recipe
        assert res["run_id"] == "k1"
        c.wait_state("k1", ("completed",))
        c.pump(0.2)
        log = read_log(runs, "k1")
        assert _seqs(log) == list(range(1, len(log) + 1))
        assert c.events["k1"] == log
        resumed_from = [e for e in log if e["type"] == "log" and "resuming" in e["data"]["message"]]
        assert resumed_from and int(resumed_from[0]["data"]["message"].split()[-1]) >= 10
    finally:
        srv.stop()


def test_server_killed_and_restarted_lists_true_status(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "30"})
    c = srv.client()
    live = c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "live"})
    dead = c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "dead"})
    c.ok("run.attach", {"run_id": "dead", "after_seq": 0})
    c.wait_state("dead", ("running",))
    c.pump(0.3)
    srv.kill()
    os.kill(dead["pid"], signal.SIGKILL)  # dies while no server watches it
    time.sleep(0.3)
    srv2 = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "30"})
    try:
        c2 = srv2.client()
        listed = {r["run_id"]: r for r in c2.ok("run.list", {})["runs"]}
        assert listed["live"]["state"] == "running" and listed["live"]["pid"] == live["pid"]
        assert listed["dead"]["state"] == "interrupted" and "gone" in listed["dead"]["reason"]
        seq_before = listed["live"]["last_seq"]
        c2.ok("run.attach", {"run_id": "live", "after_seq": seq_before})
        c2.pump(0.5)
        assert c2.events["live"][0]["seq"] == seq_before + 1  # the adopted run still streams
        assert c2.ok("run.stop", {"run_id": "live"})["action"] == "signalled"
        c2.wait_state("live", ("stopped",))
        log = read_log(runs, "dead")
        assert log[-1]["data"]["state"] == "interrupted" and _seqs(log) == list(range(1, len(log) + 1))
    finally:
        srv2.stop()


def test_run_errors_are_clear(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs)
    try:
        c = srv.client()
        f = c.call("run.start", {"recipe_path": str(tmp_path / "missing.qlora.yaml")})
        assert f["error"]["code"] == "invalid_params" and "does not exist" in f["error"]["message"]
        f = c.call("run.attach", {"run_id": "nope", "after_seq": 0})
        assert f["error"]["code"] == "not_found" and "run.list" in f["error"]["message"]
        f = c.call("run.start", {"recipe_path": str(make_recipe(tmp_path)), "resume": True})
        assert f["error"]["code"] == "not_resumable" and "resume" in f["error"]["message"]
        c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "dup"})
        f = c.call("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "dup"})
        assert f["error"]["code"] == "run_live"  # the first one is still training
        f = c.call("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "../escape"})
        assert f["error"]["code"] == "invalid_params"
    finally:
        srv.stop()
