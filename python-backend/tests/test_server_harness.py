"""Helpers for the server tests: start the REAL server as a process, talk to it as a client.

No tests here; the test_server_*.py modules import it.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[2]
FAKE_ENGINE = REPO / "test" / "fixtures" / "protocol" / "fake_engine_for_tests.py"
READY = "QLORA_STUDIO_READY "
PROTOCOL_VERSION = json.loads((REPO / "python-backend/src/qlora_studio/server/protocol.schema.json").read_text())["properties"]["protocol_version"]["const"]


class ServerProc:
    """A `python -m qlora_studio.server` process with its ready line and token."""

    def __init__(self, runs_dir: Path, *, fake_engine: bool = True, env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None) -> None:
        e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        if fake_engine:
            e["QLORA_STUDIO_ENGINE_CMD"] = json.dumps([sys.executable, str(FAKE_ENGINE)])
        e.update(env or {})
        self.runs_dir = runs_dir
        # Tests keep recipes and models in sibling temp folders: allow the session's temp root.
        roots = ["--allow-root", str(runs_dir.resolve().parents[1])]
        self.proc = subprocess.Popen([sys.executable, "-m", "qlora_studio.server", "--runs-dir", str(runs_dir), *roots,
                                      *(extra_args or [])],
                                     stdout=subprocess.PIPE, stderr=open(runs_dir.parent / f"server-{time.time_ns()}.log", "wb"), env=e)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith(READY), f"no ready line, got {line!r} (exit {self.proc.poll()})"
        self.ready = json.loads(line[len(READY):])
        self.port: int = self.ready["port"]
        self.pid: int = self.ready["pid"]
        self.token = Path(self.ready["token_file"]).read_text()
        self.url = f"ws://127.0.0.1:{self.port}"

    def client(self, hello: bool = True) -> "Client":
        """A connected, authenticated client (hello already done unless hello=False)."""
        c = Client(self.url, self.token)
        if hello:
            c.ok("hello", {"protocol": PROTOCOL_VERSION, "client": "pytest"})
        return c

    def stop(self) -> None:
        """SIGTERM and wait; then kill run processes left under this runs dir (runs outlive the
        server by design, but a failed test must not leave trainings behind on a shared machine)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        kill_runs(self.runs_dir)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Client:
    """A synchronous protocol client that records every run event it receives."""

    def __init__(self, url: str, token: str | None, headers: dict[str, str] | None = None) -> None:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        self.ws: ClientConnection = connect(url, additional_headers=h, max_size=None, open_timeout=10, origin=None, legacy=True)
        self.ids = itertools.count(1)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.partials: list[dict[str, Any]] = []

    def _take(self, frame: dict[str, Any]) -> None:
        if "events" in frame:
            for ev in frame["events"]:
                self.events.setdefault(ev["run_id"], []).append(ev)
        elif "seq" in frame:
            self.events.setdefault(frame["run_id"], []).append(frame)
        elif "partial" in frame:
            self.partials.append(frame)

    def send_raw(self, data: str | bytes) -> None:
        """Send one frame as is."""
        self.ws.send(data)

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        """Next frame, parsed; events and partials are recorded too."""
        frame = json.loads(self.ws.recv(timeout=timeout))
        self._take(frame)
        return frame

    def call(self, method: str, params: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send a request and return its response frame (result or error)."""
        rid = next(self.ids)
        self.ws.send(json.dumps({"id": rid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame.get("id") == rid and ("result" in frame or "error" in frame):
                return frame

    def ok(self, method: str, params: dict[str, Any], timeout: float = 30) -> Any:
        """call() that must succeed; returns the result."""
        f = self.call(method, params, timeout)
        assert "result" in f, f"{method} failed: {f}"
        return f["result"]

    def pump(self, seconds: float) -> None:
        """Receive (and record) frames for a while."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self.recv(left)
            except TimeoutError:
                return

    def wait_state(self, run_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
        """Pump until the run's event stream shows a status in `states`; returns that event."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for ev in self.events.get(run_id, []):
                if ev["type"] == "status" and ev["data"]["state"] in states:
                    return ev
            self.pump(0.2)
        raise AssertionError(f"run {run_id} never reached {states}; last events: {self.events.get(run_id, [])[-3:]}")

    def close(self) -> None:
        """Close the socket."""
        self.ws.close()


def kill_runs(runs_dir: Path) -> None:
    """SIGKILL every live process that has this runs dir, or a run folder in it, as an argument."""
    import psutil

    target = str(runs_dir.resolve())
    for p in psutil.process_iter(["pid", "cmdline"]):
        args = p.info["cmdline"] or []
        if any(a == target or a.startswith(target + os.sep) for a in args) and p.pid != os.getpid():
            try:
                p.kill()
            except psutil.Error:
                pass


def read_log(runs_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's events.jsonl, parsed."""
    return [json.loads(x) for x in (runs_dir / run_id / "events.jsonl").read_text().splitlines() if x.strip()]


def make_recipe(tmp: Path, name: str = "fake.qlora.yaml") -> Path:
    """A recipe file for fake-engine runs (the fake engine does not read it)."""
    p = tmp / name
    p.write_text("base_model: fake\ndata:\n  train: data.jsonl\n")
    (tmp / "data.jsonl").touch()  # a recipe naming a missing data file is refused before a run starts
    return p
