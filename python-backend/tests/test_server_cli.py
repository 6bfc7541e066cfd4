"""`qlora-studio serve` through the main CLI, and `--detach` leaving the terminal's session."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_server_harness import READY, Client, PROTOCOL_VERSION


def test_serve_is_registered_on_the_main_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "qlora_studio.cli", "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for opt in ("--port", "--host", "--runs-dir", "--token-file", "--detach", "--allow-remote-host"):
        assert opt in r.stdout


def test_detach_outlives_its_terminal_session(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    token_file = tmp_path / "secret" / "tok"
    # start_new_session here stands in for a terminal/SSH session that goes away after the command.
    r = subprocess.run([sys.executable, "-m", "qlora_studio.cli", "serve", "--detach", "--runs-dir", str(runs),
                        "--token-file", str(token_file)], capture_output=True, text=True, timeout=120, start_new_session=True)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith(READY))
    info = json.loads(line[len(READY):])
    pid = info["pid"]
    try:
        assert info["token_file"] == str(token_file) and oct(token_file.stat().st_mode & 0o777) == "0o600"
        os.kill(pid, 0)  # still running after the launching command returned
        assert os.getsid(pid) == pid and os.getsid(pid) != os.getsid(0)  # its own session: no SIGHUP from ours
        c = Client(f"ws://127.0.0.1:{info['port']}", token_file.read_text())
        assert c.ok("hello", {"protocol": PROTOCOL_VERSION, "client": "pytest"})["server_pid"] == pid
        c.close()
    finally:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the detached server did not stop on SIGTERM")
    assert not (runs / ".server" / "server.json").exists()
