"""Golden frames get the same verdict from the generated JSON Schema as from zod
(test/unit/protocol.unit.test.ts), and the Python mirror matches the TypeScript source."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from qlora_studio.server import protocol
from qlora_studio.server.handlers import HANDLERS

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "protocol"
GOLDEN = sorted((v, p) for v in ("valid", "invalid") for p in (FIXTURES / v).glob("*.json"))


def _validator(g: dict):
    kind = g["kind"]
    if kind in ("result", "partial"):
        return protocol.validator(kind, g["method"])
    return protocol.validator({"request": "request_frame", "server": "server_frame", "event": "run_event"}[kind])


@pytest.mark.parametrize("verdict,path", GOLDEN, ids=[f"{v}/{p.name}" for v, p in GOLDEN])
def test_golden_frame_verdict(verdict: str, path: Path) -> None:
    g = json.loads(path.read_text())
    errors = list(_validator(g).iter_errors(g["frame"]))
    assert (not errors) == (verdict == "valid"), [e.message for e in errors]
    if g["kind"] == "request":
        # The server's own entry point agrees with the schema verdict.
        try:
            protocol.parse_request(json.dumps(g["frame"]))
            accepted = True
        except protocol.ProtocolError as e:
            accepted = False
            assert e.code in ("invalid_request", "method_not_found", "invalid_params") and e.message
        assert accepted == (verdict == "valid")


def test_enough_golden_frames() -> None:
    assert sum(v == "valid" for v, _ in GOLDEN) >= 20 and sum(v == "invalid" for v, _ in GOLDEN) >= 20


def test_every_method_has_a_handler() -> None:
    assert set(HANDLERS) == set(protocol.METHOD_NAMES)
    assert {"hello", "recipe.validate", "dataset.preview", "run.start", "run.stop", "run.list", "run.attach",
            "generate", "adapter.merge", "model.introspect", "memory.estimate"} <= set(protocol.METHOD_NAMES)


def test_error_codes_and_version() -> None:
    assert protocol.PROTOCOL_VERSION >= 1
    assert {"parse_error", "invalid_request", "method_not_found", "invalid_params", "unauthorized",
            "version_mismatch", "not_found", "conflict", "internal"} <= set(protocol.ERROR_CODES)
    with pytest.raises(ValueError):
        protocol.ProtocolError("teapot", "x")


def test_defaults_come_from_the_schema() -> None:
    assert protocol.with_defaults("run.attach", {"run_id": "a"}) == {"run_id": "a", "after_seq": 0}
    assert protocol.with_defaults("run.start", {"recipe_path": "x"})["resume"] is False


def test_deep_nesting_and_garbage_are_protocol_errors() -> None:
    for raw, code in [("[" * 100_000, "parse_error"), ('{"id":1,"method":"hello","params":' + "[" * 40 + "]" * 40 + "}", "invalid_request"),
                      (b"\x00\x01", "parse_error"), ("nope", "parse_error"), ("[]", "invalid_request")]:
        with pytest.raises(protocol.ProtocolError) as e:
            protocol.parse_request(raw)
        assert e.value.code == code


def test_generated_schema_is_fresh() -> None:
    r = subprocess.run(["npx", "tsx", "scripts/genSchemas.ts", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
