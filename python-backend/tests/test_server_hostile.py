"""The real server against a client that never reads, and against paths outside its roots."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from websockets.exceptions import ConnectionClosed

from qlora_studio.events import EventWriter
from qlora_studio.rundir import RunDir
from test_server_harness import ServerProc

SECRET = "SECRET-CONTENT-7f3a: do not echo"


def make_big_run(runs: Path) -> None:
    """runs/big: a finished run whose ~10 MB log every attach replays in full."""
    big = runs / "big"
    big.mkdir(parents=True)
    w = EventWriter(big / "events.jsonl", "big")
    for i in range(40_000):  # a ~10 MB log: each attach replays all of it
        w.log(f"line {i} " + "x" * 200)
    w.status("completed")
    w.close()
    RunDir(big).update(run_id="big", state="completed", pid=None, recipe_path=str(runs / "r.qlora.yaml"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("hostile") / "runs"
    make_big_run(runs)
    srv = ServerProc(runs)
    yield srv
    srv.stop()


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def flood_without_reading(server: ServerProc, n: int = 400) -> tuple[float, float]:
    """A client sends n replay requests and never reads; returns the server's RSS (MB) before and at peak."""
    before = _rss_mb(server.pid)
    c = server.client()
    peak = before
    sent = 0
    try:
        for i in range(n):  # 400 replays of 10 MB would be 4 GB if the queue were unbounded
            c.send_raw(json.dumps({"id": 1000 + i, "method": "run.attach", "params": {"run_id": "big", "after_seq": 0}}))
            sent += 1
            if i % 20 == 0:
                peak = max(peak, _rss_mb(server.pid))
    except (ConnectionClosed, OSError):
        pass  # cut by the server, as it should be
    finally:
        c.ws.socket.close()  # drop it without a closing handshake: this client never reads
    time.sleep(2)
    return before, max(peak, _rss_mb(server.pid))


def test_a_client_that_never_reads_is_cut_within_a_byte_budget(server: ServerProc) -> None:
    before, peak = flood_without_reading(server)
    assert server.proc.poll() is None
    assert peak - before < 400, (before, peak)
    fresh = server.client()
    assert [r["run_id"] for r in fresh.ok("run.list", {})["runs"]] == ["big"]
    fresh.close()


@pytest.fixture()
def outside() -> Path:
    d = Path(tempfile.mkdtemp(prefix="qls-outside-", dir="/var/tmp"))
    (d / "secret.qlora.yaml").write_text(SECRET + "\n")
    (d / "adapter").mkdir()
    (d / "adapter" / "adapter_config.json").write_text("{}")
    yield d
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def test_paths_outside_the_roots_are_refused_and_nothing_is_echoed(server: ServerProc, outside: Path) -> None:
    c = server.client()
    link = server.runs_dir.parent / "link.qlora.yaml"
    link.symlink_to(outside / "secret.qlora.yaml")  # inside a root by name, outside by target
    secret = str(outside / "secret.qlora.yaml")
    calls = [("recipe.validate", {"path": secret}), ("recipe.validate", {"path": "/etc/passwd"}),
             ("recipe.validate", {"path": str(link)}),
             ("dataset.preview", {"recipe_path": secret}), ("memory.estimate", {"recipe_path": secret}),
             ("memory.estimate", {"text": "base_model: x\n", "recipe_dir": str(outside)}),
             ("run.start", {"recipe_path": secret, "run_id": "escape"}),
             ("adapter.merge", {"adapter_dir": str(outside / "adapter"), "out_dir": str(server.runs_dir / "m")}),
             ("adapter.merge", {"adapter_dir": str(server.runs_dir / "big"), "out_dir": str(outside / "merged")})]
    for method, params in calls:
        f = c.call(method, params)
        assert "error" in f, (method, f)
        text = json.dumps(f)
        assert "outside the folders this backend serves" in text, (method, f)
        assert "SECRET-CONTENT" not in text and "root:x:" not in text
    assert not (outside / "merged").exists() and not (server.runs_dir / "escape").exists()
    # Inside the roots the same call works and reports the recipe's problems by line.
    mine = server.runs_dir.parent / "mine.qlora.yaml"
    mine.write_text("base_model: ./m\ntraining:\n  lr: -1\n")
    res = c.ok("recipe.validate", {"path": str(mine)})
    assert any(i["path"].startswith("training.lr") for i in res["issues"])
    c.close()
