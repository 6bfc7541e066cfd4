"""Every non-run method through the real server, backed by the real modules and the tiny model:
recipe.validate, memory.estimate, model.introspect, dataset.preview, generate (streamed, and
cancelled), adapter.merge (with progress). Results are checked against the protocol schema."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli
from qlora_studio.server import protocol
from test_server_harness import ServerProc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = ServerProc(tmp_path_factory.mktemp("methods") / "runs", fake_engine=False)
    yield srv
    srv.stop()


def _valid(method: str, part: str, value: object) -> None:
    errors = list(protocol.validator(part, method).iter_errors(value))
    assert not errors, [e.message for e in errors]


def test_recipe_validate_and_estimate(server: ServerProc, tiny_dir: Path) -> None:
    c = server.client()
    recipe = tiny_dir / "tiny.qlora.yaml"
    res = c.ok("recipe.validate", {"path": str(recipe)})
    _valid("recipe.validate", "result", res)
    assert res["issues"] == []
    res = c.ok("recipe.validate", {"text": "base_model: x\ntraining:\n  lr: -1\n", "source": "bad.qlora.yaml"})
    _valid("recipe.validate", "result", res)
    assert any(i["path"].startswith("training.lr") and i["line"] == 3 for i in res["issues"]), res
    est = c.ok("memory.estimate", {"recipe_path": str(recipe)})
    _valid("memory.estimate", "result", est)
    assert est["total_gib"] > 0 and est["tokens_per_step"] > 0
    f = c.call("memory.estimate", {"text": "base_model: [unclosed\n"})
    assert f["error"]["code"] == "invalid_params" and f["error"]["data"]["issues"]
    f = c.call("dataset.preview", {"recipe_path": str(tiny_dir / "missing.qlora.yaml")})
    assert f["error"]["code"] == "not_found"


def test_introspect_and_preview(server: ServerProc, tiny_dir: Path) -> None:
    c = server.client()
    res = c.ok("model.introspect", {"base_model": str(tiny_dir / "model")}, timeout=120)
    _valid("model.introspect", "result", res)
    assert {"q_proj", "down_proj"} <= set(res["linear_modules"]) and res["config"]["hidden_size"] > 0
    res = c.ok("dataset.preview", {"recipe_path": str(tiny_dir / "tiny.qlora.yaml"), "limit": 3}, timeout=120)
    _valid("dataset.preview", "result", res)
    assert len(res["examples"]) == 3 and res["examples"][0]["n_trained"] > 0
    f = c.call("model.introspect", {"base_model": str(tiny_dir / "no-model")}, timeout=120)
    assert f["error"]["code"] in ("not_found", "invalid_params") and "no-model" in f["error"]["message"]


def test_generate_streams_and_cancels(server: ServerProc, tiny_dir: Path) -> None:
    c = server.client()
    base = str(tiny_dir / "model")
    res = c.ok("generate", {"base_model": base, "messages": [{"role": "user", "content": "capital of Spain?"}],
                            "max_new_tokens": 8, "temperature": 0}, timeout=120)
    _valid("generate", "result", res)
    mine = [p["partial"]["text"] for p in c.partials]
    assert res["cancelled"] is False and res["pieces"] == len(mine) >= 1 and "".join(mine) == res["text"]
    c.partials.clear()
    c.send_raw('{"id":"g2","method":"generate","params":{"base_model":"%s","prompt":"the capital of","max_new_tokens":400,"temperature":1.0}}' % base)
    c.send_raw('{"id":"c2","method":"generate.cancel","params":{"request_id":"g2"}}')
    got = {}
    while len(got) < 2:
        f = c.recv(120)
        if f.get("id") in ("g2", "c2") and ("result" in f or "error" in f):
            got[f["id"]] = f
    assert got["c2"]["result"] == {"cancelled": True}
    assert got["g2"]["result"]["cancelled"] is True and got["g2"]["result"]["pieces"] < 400
    assert c.ok("generate.cancel", {"request_id": "g2"}) == {"cancelled": False}  # already over
    f = c.call("generate", {"base_model": base, "max_new_tokens": 4})
    assert f["error"]["code"] == "invalid_params" and "messages" in f["error"]["message"]


def test_adapter_merge_with_progress(server: ServerProc, tiny_dir: Path, tmp_path: Path) -> None:
    r = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(tmp_path / "runs"), "--run-id", "m", "--max-steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    c = server.client()
    out = tmp_path / "merged"
    res = c.ok("adapter.merge", {"adapter_dir": str(tmp_path / "runs" / "m" / "adapter"), "out_dir": str(out), "dtype": "float16"}, timeout=300)
    _valid("adapter.merge", "result", res)
    assert Path(res["out_dir"]) == out and (out / "config.json").exists()
    assert res["max_abs_logit_diff"] is not None and res["max_abs_logit_diff"] < 0.5
    fractions = [p["partial"]["fraction"] for p in c.partials]
    assert fractions and fractions == sorted(fractions)
    for p in c.partials:
        _valid("adapter.merge", "partial", p["partial"])
    f = c.call("adapter.merge", {"adapter_dir": str(tmp_path), "out_dir": str(tmp_path / "x")})
    assert f["error"]["code"] == "invalid_params" and "adapter_config.json" in f["error"]["message"]
