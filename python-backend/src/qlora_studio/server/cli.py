"""`qlora-studio serve`: start the backend server for one runs directory.

Prints one machine-readable line on stdout once it listens:
    QLORA_STUDIO_READY {"port": N, "pid": N, "host": "127.0.0.1", "token_file": "...", "protocol": N}
The token is written to a 0600 file (never to stdout or a command line). `--detach` starts the
server in its own session, so it outlives the terminal, the editor and an SSH connection; the
command then prints the detached server's ready line and exits.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import EXIT_RUN_BUSY
from .protocol import PROTOCOL_VERSION

READY_PREFIX = "QLORA_STUDIO_READY "
# Another server holds the runs folder: "busy", like a run another trainer holds (never 3, bad data).
EXIT_ALREADY_RUNNING = EXIT_RUN_BUSY


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `serve` subcommand on the main CLI's subparsers and set its handler."""
    p = subparsers.add_parser("serve", help="serve the QLoRA Studio protocol over WebSocket (used by the editor extension)")
    configure(p)
    return p


def configure(p: argparse.ArgumentParser) -> None:
    """Add serve's options to a parser (shared by `qlora-studio serve` and `python -m qlora_studio.server`)."""
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --allow-remote-host)")
    p.add_argument("--runs-dir", default="runs", help="directory holding runs/<run_id>/ (default ./runs)")
    p.add_argument("--token-file", default=None, help="where to write the access token, mode 0600 (default RUNS_DIR/.server/token)")
    p.add_argument("--detach", action="store_true", help="run in a new session, detached from this terminal; print the ready line and exit")
    p.add_argument("--allow-remote-host", action="store_true", help="allow --host other than loopback (prefer an SSH port forward)")
    p.add_argument("--allow-root", action="append", default=None, metavar="FOLDER",
                   help="a folder whose files clients may name (repeatable; default: the current folder, "
                        "the runs folder and its parent)")
    p.set_defaults(func=main_serve)


def main_serve(args: argparse.Namespace) -> int:
    """Entry of the serve subcommand; returns the exit code."""
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote_host:
        print(f"error: refusing to bind {args.host}: the backend would be reachable from the network. "
              "Use an SSH port forward, or pass --allow-remote-host if you really mean it.", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}: anyone who can reach this address and steals the token can run code "
              "as you; prefer 127.0.0.1 and an SSH port forward", file=sys.stderr)
    runs_dir = Path(args.runs_dir).expanduser().resolve()
    token_file = Path(args.token_file).expanduser().resolve() if args.token_file else runs_dir / ".server" / "token"
    if args.detach:
        return _detach(args, runs_dir, token_file)
    return asyncio.run(_serve(args.host, args.port, runs_dir, token_file, _roots(args)))


def _roots(args: argparse.Namespace) -> list[Path] | None:
    return [Path(r).expanduser().resolve() for r in args.allow_root] if args.allow_root else None


def _log(msg: str) -> None:
    try:
        print(f"[qlora-studio serve {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # the editor that read our stderr is gone; the server and its runs must go on


def write_token(path: Path) -> str:
    """Create a fresh 256-bit token in a file only this user can read (written then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


async def _serve(host: str, port: int, runs_dir: Path, token_file: Path, roots: list[Path] | None = None) -> int:
    from .app import BackendServer

    state = runs_dir / ".server"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(state / "server.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _read_json(state / "server.json")
        print(f"error: another backend already serves {runs_dir} (pid {info.get('pid')}, port {info.get('port')}); "
              "connect to it, or stop it first", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    token = write_token(token_file)
    srv = BackendServer(runs_dir, token, host=host, port=port, log=_log, allow_roots=roots)
    port = await srv.start()
    ready = {"port": port, "pid": os.getpid(), "host": host, "token_file": str(token_file), "protocol": PROTOCOL_VERSION}
    (state / "server.json").write_text(json.dumps(ready))
    print(READY_PREFIX + json.dumps(ready), flush=True)
    _log(f"serving {runs_dir} on ws://{host}:{port} ({len(srv.supervisor.runs)} run(s) found)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log("shutting down; runs keep going in their own processes")
    await srv.close()
    (state / "server.json").unlink(missing_ok=True)
    return 0


def _detach(args: argparse.Namespace, runs_dir: Path, token_file: Path) -> int:
    state = runs_dir / ".server"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = open(state / "server.log", "ab")
    cmd = [sys.executable, "-m", "qlora_studio.server", "--port", str(args.port), "--host", args.host,
           "--runs-dir", str(runs_dir), "--token-file", str(token_file)]
    if args.allow_remote_host:
        cmd.append("--allow-remote-host")
    for root in _roots(args) or []:
        cmd += ["--allow-root", str(root)]
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    assert child.stdout is not None
    for line in child.stdout:
        text = line.decode("utf-8", "replace")
        if text.startswith(READY_PREFIX):
            print(text.strip(), flush=True)
            # The child keeps writing its stdout to a pipe nobody reads once we exit; it only prints
            # the one ready line, so that is safe, and its logs go to server.log.
            return 0
    code = child.wait()
    print(f"error: the detached backend exited with code {code} before it was ready; see {state / 'server.log'}", file=sys.stderr)
    return code or 1


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    """`python -m qlora_studio.server [serve options]`."""
    p = argparse.ArgumentParser(prog="python -m qlora_studio.server", description=__doc__.splitlines()[0])
    configure(p)
    args = p.parse_args(argv)
    return args.func(args)
