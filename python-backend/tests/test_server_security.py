"""The real server refuses unauthenticated and browser connections and survives hostile frames."""
from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from test_server_harness import PROTOCOL_VERSION, Client, ServerProc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = ServerProc(tmp_path_factory.mktemp("sec") / "runs")
    yield srv
    srv.stop()


def test_ready_line_and_token_file(server: ServerProc) -> None:
    assert set(server.ready) == {"port", "pid", "host", "token_file", "protocol"}
    assert server.ready["host"] == "127.0.0.1" and server.ready["protocol"] == PROTOCOL_VERSION
    mode = stat.S_IMODE(os.stat(server.ready["token_file"]).st_mode)
    assert mode == 0o600, oct(mode)
    assert len(server.token) >= 32  # >= 128 bits in url-safe base64
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
    assert server.token not in cmdline and server.token not in json.dumps(server.ready)


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 43])
def test_missing_or_wrong_token_refused(server: ServerProc, token: str | None) -> None:
    for _ in range(3):
        with pytest.raises(InvalidStatus) as e:
            Client(server.url, token)
        assert e.value.response.status_code == 401
        assert b"token" in e.value.response.body


def test_almost_right_token_refused(server: ServerProc) -> None:
    t = server.token
    for bad in (t[:-1], t + "a", t[:-1] + ("A" if t[-1] != "A" else "B"), t.upper()):
        if bad == t:
            continue
        with pytest.raises(InvalidStatus) as e:
            Client(server.url, bad)
        assert e.value.response.status_code == 401


@pytest.mark.parametrize("origin", ["http://localhost:3000", "vscode-webview://abc", "null", "https://evil.example"])
def test_browser_origin_refused_even_with_token(server: ServerProc, origin: str) -> None:
    for _ in range(2):
        with pytest.raises(InvalidStatus) as e:
            Client(server.url, server.token, headers={"Origin": origin})
        assert e.value.response.status_code == 403


def test_hello_first_then_version_check(server: ServerProc) -> None:
    c = server.client(hello=False)
    f = c.call("run.list", {})
    assert f["error"]["code"] == "invalid_request" and "hello" in f["error"]["message"]
    f = c.call("hello", {"protocol": PROTOCOL_VERSION + 1, "client": "pytest"})
    assert f["error"]["code"] == "version_mismatch" and "update" in f["error"]["message"]
    assert f["error"]["data"] == {"client_protocol": PROTOCOL_VERSION + 1, "server_protocol": PROTOCOL_VERSION}
    f = c.call("hello", {"protocol": PROTOCOL_VERSION - 1, "client": "pytest"})
    assert "update the extension" in f["error"]["message"]
    res = c.ok("hello", {"protocol": PROTOCOL_VERSION, "client": "pytest"})
    assert res["protocol"] == PROTOCOL_VERSION and res["server_pid"] == server.pid
    caps = res["capabilities"]
    assert caps["devices"] and caps["torch"] and caps["bitsandbytes"]
    assert c.ok("run.list", {}) == {"runs": []}
    c.close()


def test_refuses_non_loopback_bind_without_flag(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "qlora_studio.server", "--runs-dir", str(tmp_path), "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--allow-remote-host" in r.stderr


def test_one_server_per_runs_dir(server: ServerProc) -> None:
    r = subprocess.run([sys.executable, "-m", "qlora_studio.server", "--runs-dir", str(server.runs_dir)],
                       capture_output=True, text=True, timeout=60)
    # 5 = busy (like a run another trainer holds), never 3, which means bad data elsewhere in the CLI.
    assert r.returncode == 5 and str(server.port) in r.stderr


def _fuzz_frames(rng: random.Random, n: int) -> list[str | bytes]:
    """n hostile frames of many kinds, deterministic for a seed."""
    methods = ["hello", "run.list", "run.attach", "run.stop", "generate", "nope", "", "run.start", "adapter.merge"]
    values = [None, True, 1, -1, 1.5, 2**70, "", "x", [], {}, [1, [2]], {"a": {}}]
    out: list[str | bytes] = []
    for i in range(n):
        k = i % 12
        if k == 0:
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
        elif k == 1:
            out.append("".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 40))))
        elif k == 2:
            out.append(json.dumps(rng.choice(values)))
        elif k == 3:
            out.append(json.dumps({"id": rng.choice(values), "method": rng.choice(methods), "params": rng.choice(values)}))
        elif k == 4:
            out.append(json.dumps({"id": i, "method": "x" * rng.randint(100, 5000), "params": {}}))
        elif k == 5:
            out.append(json.dumps({"id": i, "method": "run.attach", "params": {"run_id": "y" * rng.randint(1, 200_000), "after_seq": 0}}))
        elif k == 6:
            d = rng.randint(30, 3000)
            out.append('{"id":%d,"method":"hello","params":' % i + "[" * d + "]" * d + "}")
        elif k == 7:
            out.append('{"id":%d,"method":"run.list","params":{}' % i + rng.choice(["", ",", "]", "}}", ' "x"']))
        elif k == 8:
            out.append(json.dumps({"id": i, "method": rng.choice(methods), "params": {"run_id": rng.choice(values), "after_seq": rng.choice(values)}}))
        elif k == 9:
            out.append(json.dumps({"id": i, "method": "run.stop", "params": {"run_id": "../../etc", "force": True}}))
        elif k == 10:
            out.append(json.dumps({"id": i, "method": "hello", "params": {"protocol": rng.choice(values), "client": rng.choice(values)}, "extra": 1}))
        else:
            out.append(json.dumps({"id": i, "method": "run.attach", "params": {"run_id": "no-such-run", "after_seq": rng.randint(-5, 5)}}))
    return out


def test_fuzz_10000_frames_keeps_server_up(server: ServerProc) -> None:
    rng = random.Random(1234)
    frames = _fuzz_frames(rng, 10_000)
    answered = closed = 0
    c = server.client()
    pending = 0
    for f in frames:
        try:
            c.send_raw(f)
            pending += 1
            if pending >= 50:  # drain in windows so the socket buffers never fill
                while pending:
                    frame = c.recv(10)
                    assert "error" in frame or "result" in frame, frame
                    if "error" in frame:
                        assert frame["error"]["code"] in ("parse_error", "invalid_request", "method_not_found", "invalid_params",
                                                         "not_found", "version_mismatch"), frame
                        assert frame["error"]["message"]
                    answered += 1
                    pending -= 1
        except ConnectionClosed:
            closed += 1
            pending = 0
            c = server.client()
    while pending:
        try:
            c.recv(10)
            answered += 1
        except ConnectionClosed:
            closed += 1
        pending -= 1
    # None of these frames is over the size cap or breaks UTF-8, so every one gets an answer.
    assert (answered, closed) == (10_000, 0)
    # Oversize: over the frame cap closes that connection (1009), and only that one.
    big = server.client()
    with pytest.raises(ConnectionClosed) as e:
        big.send_raw(json.dumps({"id": 1, "method": "hello", "params": {"client": "x" * (5 * 1024 * 1024)}}))
        big.recv(10)
    assert e.value.rcvd is not None and e.value.rcvd.code == 1009
    assert server.proc.poll() is None
    normal = server.client()
    assert normal.ok("run.list", {}) == {"runs": []}
    c.close()
    normal.close()
