"""The WebSocket server: authentication, origin check, frame validation, dispatch, event fan-out.

Security model (DESIGN.md): listen on 127.0.0.1, require `Authorization: Bearer <token>` in the
opening handshake (compared in constant time; the token lives in a 0600 file, never on a command
line), refuse any request carrying a browser `Origin`, cap frame size and JSON depth, and check
every frame against the protocol schema. A bad frame is answered with an error and the connection
stays; only transport-level abuse (oversize, invalid UTF-8) closes it.
"""
from __future__ import annotations

import asyncio
import hmac
import http
import importlib.metadata as md
import os
import platform
import traceback
from pathlib import Path
from typing import Any, Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .handlers import HANDLERS
from .models import ModelCache
from ..errors import StudioError
from .paths import PathGuard, default_roots
from .protocol import MAX_FRAME_BYTES, ProtocolError, encode, error_from, parse_request, with_defaults
from .runs import RunSupervisor
from .tail import EventTail

MAX_QUEUED_FRAMES = 20000  # a client this far behind is cut; it reconnects and re-attaches from its last seq
# The same by size: a client that sends requests but never reads must not grow the server's
# memory by more than this (frames can be large: replays, previews).
MAX_QUEUED_BYTES = 32 << 20
MAX_BATCH = 1000


class Connection:
    """One authenticated client: its outbound queue, watched runs and cancellable requests."""

    def __init__(self, ws: ServerConnection, log: Callable[[str], None]) -> None:
        self.ws = ws
        self.hello_done = False
        self.cancels: dict[Any, Any] = {}
        self._subs: dict[str, tuple[EventTail, int]] = {}
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queued_bytes = 0
        self._log = log
        self.closed = False

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; frames leave in queue order, which is what keeps replay and live in order."""
        self._put(encode(frame))

    def send_partial(self, rid: Any, partial: dict[str, Any]) -> None:
        """Queue a partial frame of a streamed request."""
        self.send({"id": rid, "partial": partial})

    def _put(self, text: str) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= MAX_QUEUED_FRAMES or self._queued_bytes + len(text) > MAX_QUEUED_BYTES:
            self.closed = True
            self._log("closing a client that stopped reading (outbound queue full)")
            asyncio.get_running_loop().create_task(self.ws.close(1013, "client too slow: reconnect and re-attach from your last seq"))
            return
        self._queued_bytes += len(text)
        self._queue.put_nowait(text)

    def _send_lines(self, run_id: str, lines: list[bytes]) -> None:
        for i in range(0, len(lines), MAX_BATCH):
            part = lines[i:i + MAX_BATCH]
            if len(part) == 1:
                self._put(part[0].decode("utf-8", "replace"))
            else:
                head = '{"run_id":' + encode(run_id) + ',"events":['
                self._put(head + b",".join(part).decode("utf-8", "replace") + "]}")

    def attach(self, tail: EventTail, after_seq: int) -> int:
        """Queue the replay after `after_seq`, then subscribe; no await in between, so no gap and no overlap."""
        self.detach(tail.run_id)
        self._send_lines(tail.run_id, tail.replay(after_seq))
        key = tail.subscribe(lambda lines: self._send_lines(tail.run_id, lines))
        self._subs[tail.run_id] = (tail, key)
        return tail.last_seq

    def detach(self, run_id: str) -> bool:
        """Stop streaming a run here; True when it was attached."""
        sub = self._subs.pop(run_id, None)
        if sub:
            sub[0].unsubscribe(sub[1])
        return sub is not None

    def cleanup(self) -> None:
        """Forget subscriptions and cancel generations when the socket is gone."""
        self.closed = True
        for run_id in list(self._subs):
            self.detach(run_id)
        for c in self.cancels.values():
            c.cancel()  # nobody is left to read the tokens
        self._queue.put_nowait(None)

    async def writer(self) -> None:
        """Drain the outbound queue to the socket, batching what is ready into one write burst."""
        while True:
            text = await self._queue.get()
            if text is None:
                return
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                return
            finally:
                self._queued_bytes -= len(text)


class BackendServer:
    """Serves the protocol over WebSocket for one runs directory."""

    def __init__(self, runs_dir: Path, token: str, *, host: str = "127.0.0.1", port: int = 0,
                 log: Callable[[str], None] | None = None, engine_cmd: list[str] | None = None,
                 allow_roots: list[Path] | None = None) -> None:
        self.token = token
        self.host, self.port = host, port
        self.pid = os.getpid()
        self._log = log or (lambda _m: None)
        self.supervisor = RunSupervisor(runs_dir, engine_cmd, self._log)
        self.paths = PathGuard(allow_roots if allow_roots else default_roots(Path(runs_dir)))
        self.models = ModelCache()
        self._server: Server | None = None
        self._caps: asyncio.Task[dict[str, Any]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        """Reconcile runs on disk, bind, and return the port."""
        self.supervisor.open()
        self._server = await serve(self._handle, self.host, self.port, max_size=MAX_FRAME_BYTES, max_queue=64,
                                   process_request=self._check_handshake, compression=None, ping_interval=20, ping_timeout=60,
                                   close_timeout=2)  # a client that never reads must not hold up a close
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        self._caps = asyncio.get_running_loop().create_task(asyncio.to_thread(probe_capabilities))
        return self.port

    async def close(self) -> None:
        """Stop serving (runs keep going)."""
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        await self.supervisor.close()

    async def capabilities(self) -> dict[str, Any]:
        """Devices and library versions, probed once in a thread at start."""
        assert self._caps is not None
        return await asyncio.shield(self._caps)

    def _check_handshake(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Origin") is not None:
            # Browsers always send Origin and cannot drop it: a page must never drive the backend.
            self._log("refused a connection with a browser Origin header")
            return conn.respond(http.HTTPStatus.FORBIDDEN, "browser origins are refused: connect from the QLoRA Studio extension\n")
        auth = request.headers.get("Authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self._log("refused a connection without the right token")
            return conn.respond(http.HTTPStatus.UNAUTHORIZED,
                                "missing or wrong token: send `Authorization: Bearer <token>` with the token from the server's token file\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(ws, self._log)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        try:
            async for raw in ws:
                self._dispatch(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            conn.cleanup()
            await writer

    def _dispatch(self, conn: Connection, raw: str | bytes) -> None:
        if conn.closed:  # cut for not reading: what it still sent would only be answered to nobody
            return
        try:
            rid, method, params = parse_request(raw)
        except ProtocolError as e:
            conn.send({"id": (e.data or {}).get("id") if isinstance(e.data, dict) else None, "error": e.body()})
            return
        if not conn.hello_done and method != "hello":
            conn.send({"id": rid, "error": ProtocolError("invalid_request", f"send `hello` first: {method} before hello is refused").body()})
            return
        task = asyncio.get_running_loop().create_task(self._run(conn, rid, method, with_defaults(method, params)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: Connection, rid: Any, method: str, params: dict[str, Any]) -> None:
        if conn.closed:  # requests queued before the client was cut are not worth running
            return
        try:
            await self._run_checked(conn, rid, method, params)
        except Exception as e:  # noqa: BLE001 - a handler bug must answer the request, not kill the connection
            self._log(f"{method} failed: {traceback.format_exc()}")
            conn.send({"id": rid, "error": {"code": "internal", "message": f"{method} failed on the backend: {type(e).__name__}: {e}"[:2000]}})

    async def _run_checked(self, conn: Connection, rid: Any, method: str, params: dict[str, Any]) -> None:
        try:
            result = await HANDLERS[method](self, conn, rid, params)
            try:
                conn.send({"id": rid, "result": result})
            except ValueError:  # NaN/inf in a result: JSON has no spelling for them
                conn.send({"id": rid, "result": _finite(result)})
        except ProtocolError as e:
            conn.send({"id": rid, "error": e.body()})
        except (StudioError, ValueError, FileNotFoundError, NotADirectoryError) as e:
            # Bad input, not a bug: the error already says what is wrong and what to do.
            conn.send({"id": rid, "error": error_from(e, method).body()})


def _finite(v: Any) -> Any:
    from .tail import _finite as f

    return f(v)


def probe_capabilities() -> dict[str, Any]:
    """Devices (GPU names and memory) and library versions; never raises."""
    def ver(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    caps: dict[str, Any] = {"devices": [], "python": platform.python_version(), "torch": ver("torch"), "cuda": None,
                            "bitsandbytes": ver("bitsandbytes"), "transformers": ver("transformers"), "peft": ver("peft")}
    try:
        import torch

        caps["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
            pr = torch.cuda.get_device_properties(i)
            caps["devices"].append({"index": i, "type": "cuda", "name": pr.name, "memory_total_mb": round(pr.total_memory / 2**20)})
    except Exception:  # noqa: BLE001 - a broken torch install still lets the user edit and preview
        pass
    if not caps["devices"]:
        caps["devices"].append({"index": 0, "type": "cpu", "name": platform.processor() or platform.machine() or "cpu", "memory_total_mb": _host_mem_mb()})
    return caps


def _host_mem_mb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)
    except (ValueError, OSError):
        return None
