"""Backend protocol, Python side.

Mirror: `src/protocol/` (zod, the source). `protocol.schema.json` next to this file is generated
from it by `npm run gen:schemas`; every inbound frame is checked against it here, so the two
languages cannot drift without a failing test (tests/test_protocol.py).

Frames (JSON text messages):
    client -> server   request  {id, method, params}            (`hello` first, always)
    server -> client   result   {id, result}
                       error    {id | null, error: {code, message, data?}}
                       partial  {id, partial: {...}}             (streamed methods, before result)
                       event    one events.jsonl line, unchanged
                       batch    {run_id, events: [event, ...]}   (consecutive events of one run)
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_FILE = "protocol.schema.json"
# Inbound frames deeper than this are refused before any handler sees them: no method needs
# more than a few levels, and deep nesting is how a hostile frame makes a parser work hard.
MAX_DEPTH = 32
MAX_FRAME_BYTES = 4 * 1024 * 1024


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The generated protocol JSON Schema (a container: its properties are the parts)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _props() -> dict[str, Any]:
    return schema()["properties"]


PROTOCOL_VERSION: int = _props()["protocol_version"]["const"]
ERROR_CODES: tuple[str, ...] = tuple(_props()["error_codes"]["enum"])
METHOD_NAMES: tuple[str, ...] = tuple(_props()["methods"]["properties"].keys())


class ProtocolError(Exception):
    """An error answered to the client as `{id, error: {code, message, data}}`; the connection stays."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def body(self) -> dict[str, Any]:
        """The `error` object of the frame."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def error_from(err: BaseException, method: str) -> ProtocolError:
    """The protocol error for a backend error: its code from the error class's `protocol_code`
    (StudioError), `not_found` for a missing file, else `invalid_params`; recipe issues go in data."""
    from ..errors import StudioError

    if isinstance(err, StudioError):
        code = err.protocol_code
    else:
        code = "not_found" if isinstance(err, (FileNotFoundError, NotADirectoryError)) else "invalid_params"
    if code not in ERROR_CODES:  # a code this schema does not list yet: the nearest older one
        code = "conflict"
    issues = getattr(err, "issues", None)
    data = {"issues": [i.to_dict() for i in issues]} if isinstance(issues, list) else None
    return ProtocolError(code, f"{method}: {err}"[:4000], data)


@lru_cache(maxsize=None)
def validator(part: str, method: str | None = None) -> jsonschema.protocols.Validator:
    """A validator for one part: `request_envelope`, `request_frame`, `server_frame`, `run_event`,
    or with `method`: `params`, `result`, `partial` of that method."""
    sub = _props()["methods"]["properties"][method]["properties"][part] if method else _props()[part]
    cls = jsonschema.validators.validator_for(schema())
    return cls(sub, format_checker=None)


def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    # Iterative, so a hostile frame cannot blow the Python stack while being measured.
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


def _describe(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(frame)"
    return f"{where}: {err.message[:300]}"


def parse_request(raw: str | bytes) -> tuple[Any, str, dict[str, Any]]:
    """Parse one inbound text frame into (id, method, params), params checked against the method.

    Raises ProtocolError (with the request id in `.data['id']` when one could be read) for bad
    JSON, a bad envelope, an unknown method, or invalid params.
    """
    if isinstance(raw, bytes):
        raise ProtocolError("parse_error", "binary frames are not accepted: send JSON text frames")
    try:
        frame = json.loads(raw)
    except RecursionError:
        raise ProtocolError("parse_error", f"frame is nested too deeply (limit {MAX_DEPTH})") from None
    except ValueError as e:
        raise ProtocolError("parse_error", f"frame is not valid JSON: {e}") from None
    if not _depth_ok(frame):
        raise ProtocolError("invalid_request", f"frame is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(frame, dict):
        raise ProtocolError("invalid_request", "a request must be a JSON object {id, method, params}")
    rid = frame.get("id")
    id_ok = (isinstance(rid, str) and 0 < len(rid) <= 128) or (isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) < 2**53)
    errors = sorted(validator("request_envelope").iter_errors(frame), key=lambda e: list(e.absolute_path))
    if errors:
        raise ProtocolError(
            "invalid_request",
            "bad request frame, expected {id, method, params}: " + "; ".join(_describe(e) for e in errors[:5]),
            {"id": rid if id_ok else None},
        )
    method = frame["method"]
    if method not in METHOD_NAMES:
        raise ProtocolError(
            "method_not_found",
            f"unknown method {method[:128]!r}; this backend speaks protocol {PROTOCOL_VERSION}: {', '.join(METHOD_NAMES)}",
            {"id": rid},
        )
    params = frame["params"]
    errors = sorted(validator("params", method).iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        raise ProtocolError(
            "invalid_params",
            f"invalid params for {method}: " + "; ".join(_describe(e) for e in errors[:5]),
            {"id": rid},
        )
    return rid, method, params


def with_defaults(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params with the schema's top-level defaults filled in (zod defaults live in the schema)."""
    out = dict(params)
    props = _props()["methods"]["properties"][method]["properties"]["params"].get("properties", {})
    for key, sub in props.items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
    return out


def encode(frame: dict[str, Any]) -> str:
    """Serialize an outbound frame compactly."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable)


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "__fspath__"):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
