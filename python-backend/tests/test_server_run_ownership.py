"""The server owns runs: it names them and their folders, refuses a second trainer on a run and a
resume that cannot be, and writes an end state for an engine that died without one. Runs use the
fake engine (a test double of the training process, see test_server_runs.py); the locks, the run
folders and the server are real."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qlora_studio.rundir import RunDir
from test_server_harness import Client, ServerProc, make_recipe, read_log


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    d = tmp_path / "runs"
    d.mkdir()
    return d


def _seqs(log: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in log]


def _stopped_run(srv: ServerProc, recipe: Path, run_id: str) -> Client:
    c = srv.client()
    c.ok("run.start", {"recipe_path": str(recipe), "run_id": run_id})
    c.ok("run.attach", {"run_id": run_id, "after_seq": 0})
    c.wait_state(run_id, ("running",))
    c.pump(0.3)
    c.ok("run.stop", {"run_id": run_id})
    c.wait_state(run_id, ("stopped",))
    return c


def _race(srv: ServerProc, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Send the same run.start on two connections at once; both answers."""
    clients = [srv.client(), srv.client()]
    out: list[dict[str, Any]] = [{}, {}]
    gate = threading.Barrier(2)

    def go(i: int) -> None:
        gate.wait()
        out[i] = clients[i].call("run.start", params)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return out


def test_two_resumes_of_one_stopped_run_one_accepted_one_refused(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "400", "FAKE_ENGINE_RATE": "100"})
    try:
        recipe = make_recipe(tmp_path)
        c = _stopped_run(srv, recipe, "twice")
        answers = _race(srv, {"recipe_path": str(recipe), "run_id": "twice", "resume": True})
        ok = [a for a in answers if "result" in a]
        refused = [a for a in answers if "error" in a]
        assert len(ok) == 1 and len(refused) == 1, answers
        assert refused[0]["error"]["code"] == "run_live" and "stop" in refused[0]["error"]["message"]
        c.wait_state("twice", ("completed",))
        log = read_log(runs, "twice")
        assert _seqs(log) == list(range(1, len(log) + 1))  # one writer: no duplicate seq
        assert [e["data"]["state"] for e in log if e["type"] == "status"][-1] == "completed"
    finally:
        srv.stop()


def test_one_run_id_sent_twice_at_once_starts_one_run(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100", "FAKE_ENGINE_RATE": "100"})
    try:
        answers = _race(srv, {"recipe_path": str(make_recipe(tmp_path)), "run_id": "same"})
        assert sorted("result" in a for a in answers) == [False, True], answers
        err = next(a["error"] for a in answers if "error" in a)
        assert err["code"] in ("run_live", "conflict") and "same" in err["message"]
        c = srv.client()
        c.ok("run.attach", {"run_id": "same", "after_seq": 0})
        c.wait_state("same", ("completed",))
        log = read_log(runs, "same")
        assert _seqs(log) == list(range(1, len(log) + 1))
    finally:
        srv.stop()


def test_resume_of_a_failed_run_without_checkpoint_is_refused(runs: Path, tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    srv = ServerProc(runs, env={"FAKE_ENGINE_CRASH": "the base model folder ./model does not exist"})
    try:
        c = srv.client()
        c.ok("run.start", {"recipe_path": str(recipe), "run_id": "nock"})
        c.ok("run.attach", {"run_id": "nock", "after_seq": 0})
        ev = c.wait_state("nock", ("failed",))
        # The engine wrote nothing; the supervisor says why, with the engine's last error line.
        assert "./model does not exist" in ev["data"]["reason"]
        info = {r["run_id"]: r for r in c.ok("run.list", {})["runs"]}["nock"]
        assert info["state"] == "failed" and info["resumable"] is False
        f = c.call("run.start", {"run_id": "nock", "resume": True})
        assert f["error"]["code"] == "not_resumable" and "no checkpoint" in f["error"]["message"]
        assert read_log(runs, "nock")[-1]["data"]["state"] == "failed"  # nothing was started
    finally:
        srv.stop()


def test_engine_exit_without_end_state_on_resume_is_reported_failed(runs: Path, tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "50"})
    try:
        _stopped_run(srv, recipe, "dies")
    finally:
        srv.stop()
    srv = ServerProc(runs, env={"FAKE_ENGINE_CRASH": "cannot load the checkpoint"})
    try:
        c = srv.client()
        before = read_log(runs, "dies")[-1]["seq"]
        c.ok("run.start", {"run_id": "dies", "resume": True})  # by id only: the frozen recipe is used
        c.ok("run.attach", {"run_id": "dies", "after_seq": before})
        ev = c.wait_state("dies", ("failed",))
        assert "cannot load the checkpoint" in ev["data"]["reason"]
        errors = [e for e in c.events["dies"] if e["type"] == "error"]
        assert errors and "exited with code 2" in errors[0]["data"]["message"]
    finally:
        srv.stop()


def test_a_run_held_by_another_trainer_is_refused_and_left_alone(runs: Path, tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "100000", "FAKE_ENGINE_RATE": "50"})
    try:
        c = _stopped_run(srv, recipe, "held")
        with RunDir(runs / "held").lock():  # a trainer started by hand (CLI) holds the run
            f = c.call("run.start", {"run_id": "held", "resume": True})
            assert f["error"]["code"] == "run_live"
            assert {r["run_id"]: r for r in c.ok("run.list", {})["runs"]}["held"]["resumable"] is False
        assert {r["run_id"]: r for r in c.ok("run.list", {})["runs"]}["held"]["resumable"] is True
    finally:
        srv.stop()


def test_server_names_runs_from_output_run_name_and_dir_or_the_users_runs_dir(runs: Path, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "data.jsonl").touch()
    recipe = proj / "named.qlora.yaml"
    recipe.write_text("base_model: fake\ndata:\n  train: data.jsonl\noutput:\n  dir: out/runs\n  run_name: exp7\n")
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "5", "FAKE_ENGINE_RATE": "0"})
    try:
        c = srv.client()
        info = c.ok("run.start", {"recipe_path": str(recipe)})
        assert info["run_id"].startswith("exp7-")
        assert Path(info["run_dir"]).parent == proj / "out" / "runs"
        assert info["frozen_recipe_path"] == str(proj / "out" / "runs" / info["run_id"] / "recipe.qlora.yaml")
        mine = tmp_path / "my-runs"
        other = c.ok("run.start", {"recipe_path": str(recipe), "runs_dir": str(mine)})
        assert Path(other["run_dir"]).parent == mine and other["run_id"].startswith("exp7-")
        c.ok("run.attach", {"run_id": info["run_id"], "after_seq": 0})
        c.wait_state(info["run_id"], ("completed",))
    finally:
        srv.stop()
    # A restarted server still lists runs in every runs folder it has used.
    srv = ServerProc(runs)
    try:
        listed = {r["run_id"] for r in srv.client().ok("run.list", {})["runs"]}
        assert {info["run_id"], other["run_id"]} <= listed
    finally:
        srv.stop()


def test_a_recipe_whose_data_file_is_missing_starts_no_run(runs: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "nodata.qlora.yaml"
    recipe.write_text("base_model: fake\ndata:\n  train: missing.jsonl\n")
    srv = ServerProc(runs)
    try:
        c = srv.client()
        f = c.call("run.start", {"recipe_path": str(recipe), "run_id": "nodata"})
        assert f["error"]["code"] == "invalid_params" and "missing.jsonl" in f["error"]["message"]
        issue = f["error"]["data"]["issues"][0]
        assert issue["path"] == "data.train" and issue["line"] == 3
        assert not (runs / "nodata").exists()
        res = c.ok("recipe.validate", {"path": str(recipe)})
        assert [(i["path"], i["line"]) for i in res["issues"]] == [("data.train", 3)]
    finally:
        srv.stop()


def test_adapter_info_answers_for_a_run_and_for_its_adapter(runs: Path, tmp_path: Path) -> None:
    srv = ServerProc(runs, env={"FAKE_ENGINE_STEPS": "20", "FAKE_ENGINE_RATE": "0", "FAKE_ENGINE_CKPT_EVERY": "10"})
    try:
        c = srv.client()
        c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "ad"})
        c.ok("run.attach", {"run_id": "ad", "after_seq": 0})
        c.wait_state("ad", ("completed",))
        adapter = runs / "ad" / "adapter"
        (adapter / "qlora_studio.json").write_text(json.dumps({"base_model": "/models/base", "run_id": "ad", "step": 20}))
        by_run = c.ok("adapter.info", {"run_id": "ad"})
        by_dir = c.ok("adapter.info", {"adapter_dir": str(adapter)})
        assert by_run == by_dir
        assert by_run["base_model"] == "/models/base" and by_run["run_id"] == "ad"
        assert by_run["recipe_path"] == str(runs / "ad" / "recipe.qlora.yaml")
        assert by_run["generation"]["max_new_tokens"] == 256 and by_run["data_format"] == "chat"
        assert [(k["name"], k["step"]) for k in by_run["checkpoints"]] == [("step-10", 10), ("step-20", 20), ("adapter", 20)]
        assert by_run["merge_out_dir"] == str(runs / "ad" / "merged")
        f = c.call("adapter.info", {"adapter_dir": str(tmp_path)})
        assert f["error"]["code"] == "invalid_params" and "adapter_config.json" in f["error"]["message"]
        f = c.call("adapter.info", {})
        assert f["error"]["code"] == "invalid_params"
    finally:
        srv.stop()


def test_the_hugging_face_token_reaches_no_file_of_the_server_or_its_runs(runs: Path, tmp_path: Path) -> None:
    token = "hf_SERVERTESTTOKEN0123456789abcdef"
    srv = ServerProc(runs, env={"HF_TOKEN": token, "FAKE_ENGINE_STEPS": "20", "FAKE_ENGINE_RATE": "0"})
    try:
        c = srv.client()
        c.ok("run.start", {"recipe_path": str(make_recipe(tmp_path)), "run_id": "tok"})
        c.ok("run.attach", {"run_id": "tok", "after_seq": 0})
        c.wait_state("tok", ("completed",))
        c.call("run.start", {"run_id": "tok", "resume": True})  # an error answer, logged by the server
    finally:
        srv.stop()
    written = [f for f in tmp_path.rglob("*") if f.is_file()]  # runs, .server (token, logs), server stderr
    assert any(f.name.endswith(".log") for f in written)
    assert not [f for f in written if token.encode() in f.read_bytes()]


def test_run_list_finds_runs_in_the_runs_folders_of_the_recipes_it_is_given(runs: Path, tmp_path: Path) -> None:
    # A run the CLI made next to its recipe (output.dir), in a folder this server never used.
    proj = tmp_path / "proj"
    proj.mkdir()
    recipe = make_recipe(proj)
    recipe.write_text(recipe.read_text() + "output:\n  dir: cli-runs\n")
    RunDir.create(proj / "cli-runs", "fake-20261129-200446-a1b2", recipe)
    broken = proj / "broken.qlora.yaml"
    broken.write_text("base_model: [\n")
    srv = ServerProc(runs)
    try:
        c = srv.client()
        assert [r["run_id"] for r in c.ok("run.list", {})["runs"]] == []
        listed = c.ok("run.list", {"recipe_paths": [str(recipe), str(broken)]})["runs"]
        assert [r["run_id"] for r in listed] == ["fake-20261129-200446-a1b2"], "a broken recipe does not spoil the list"
        assert Path(listed[0]["run_dir"]) == (proj / "cli-runs" / "fake-20261129-200446-a1b2").resolve()
    finally:
        srv.stop()
    srv = ServerProc(runs)
    try:  # the folder is remembered across a restart
        assert [r["run_id"] for r in srv.client().ok("run.list", {})["runs"]] == ["fake-20261129-200446-a1b2"]
    finally:
        srv.stop()
