"""The fuzz tier: >= 1,000 generated hostile recipes and >= 1,000 hostile rows through validate and
preview, in a few batch processes under an address-space limit with an alarm per case, plus real
CLI processes, plus malformed frames and a never-reading client at the real server.

Every case must end as issues or bad rows: 0 tracebacks, 0 timeouts, every bad row named with
its line; the server must stay up and within a memory budget.
"""
from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from fuzz_cases import hostile_recipes, hostile_rows
from test_data_support import MASKING
from test_server_harness import ServerProc
from test_server_hostile import flood_without_reading, make_big_run
from test_server_security import _fuzz_frames

HERE = Path(__file__).resolve().parent
N_RECIPES, N_ROWS = 1200, 1200


def _worker(mode: str, cases: Path, out: Path) -> subprocess.Popen[str]:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), mode, str(cases), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_fuzz_recipes_and_rows_end_as_issues_and_named_bad_rows(tmp_path: Path) -> None:
    recipes = hostile_recipes(N_RECIPES)
    half = len(recipes) // 2
    (tmp_path / "r1.json").write_text(json.dumps(recipes[:half]))
    (tmp_path / "r2.json").write_text(json.dumps(recipes[half:]))
    (tmp_path / "rows.jsonl").write_bytes(b"\n".join(hostile_rows(N_ROWS)) + b"\n")
    procs = {name: _worker(mode, tmp_path / src, tmp_path / f"{name}.out.json")
             for name, mode, src in (("r1", "recipes", "r1.json"), ("r2", "recipes", "r2.json"),
                                     ("rows", "rows", "rows.jsonl"))}
    results = {}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        results[name] = json.loads((tmp_path / f"{name}.out.json").read_text())
    assert results["r1"]["cases"] + results["r2"]["cases"] == N_RECIPES
    assert results["rows"]["cases"] == N_ROWS
    for name, res in results.items():
        assert res["failures"] == [], (name, res["failures"][:5])
        assert "unnamed_lines" not in res and "extra_lines" not in res, res
    assert results["rows"]["bad_rows"] >= N_ROWS // 4  # the generator's hostile share is really refused


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    return subprocess.run([sys.executable, "-m", "qlora_studio.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_fuzz_real_cli_processes(tmp_path: Path) -> None:
    picks = [r for r in hostile_recipes(N_RECIPES)[:16] if r.strip()][:8]
    for i, text in enumerate(picks):
        (tmp_path / f"h{i}.qlora.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        res = _cli(["validate", f"h{i}.qlora.yaml"], tmp_path)
        assert res.returncode in (0, 2) and "Traceback" not in res.stderr, res.stderr[-2000:]
    rows = hostile_rows(300, seed=5)
    (tmp_path / "rows.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    (tmp_path / "p.qlora.yaml").write_text(f"base_model: {MASKING / 'chatml'}\ndata:\n  train: rows.jsonl\n"
                                           "  chat_template: chatml\n  max_seq_len: 128\n", encoding="utf-8")
    res = _cli(["preview", "p.qlora.yaml", "--limit", "2"], tmp_path)
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr[-3000:]
    named = {int(line.split(":")[1]) for line in res.stderr.splitlines() if line.startswith("rows.jsonl:")}
    assert len(named) >= 50 and named <= set(range(1, len(rows) + 1))


def test_fuzz_server_survives_malformed_frames_and_a_never_reading_client(tmp_path_factory) -> None:
    runs = tmp_path_factory.mktemp("fuzzsrv") / "runs"
    make_big_run(runs)
    server = ServerProc(runs)
    try:
        before, peak = flood_without_reading(server, 300)
        c = server.client()
        answered = 0
        for i, frame in enumerate(_fuzz_frames(random.Random(99), 1000)):
            c.send_raw(frame)
            if i % 50 == 49:
                while answered < i + 1:
                    f = c.recv(30)
                    assert "error" in f or "result" in f, f
                    answered += 1
        while answered < 1000:
            c.recv(30)
            answered += 1
        assert server.proc.poll() is None and answered == 1000
        assert peak - before < 400, (before, peak)
        assert c.ok("run.list", {})["runs"][0]["run_id"] == "big"
        c.close()
    except ConnectionClosed as e:  # pragma: no cover - a failure to report, not an expected path
        pytest.fail(f"the reading client was cut: {e}")
    finally:
        server.stop()
