"""One handler per protocol method (the list in src/protocol/methods.ts, mirrored here).

Handlers get params already validated against the generated schema, with defaults filled. The
other backend modules (recipe, data, generate, merge, estimate) are imported inside the handler
that needs them, so the server starts without importing torch. Blocking work runs in a thread;
raise ProtocolError for errors the user can act on.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .. import __version__
from .protocol import PROTOCOL_VERSION, ProtocolError

if TYPE_CHECKING:
    from .app import BackendServer, Connection

Handler = Callable[["BackendServer", "Connection", Any, dict[str, Any]], Awaitable[Any]]


class Cancel:
    """A cancellable request: the stop event its worker thread watches, and whether someone asked."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.requested = False

    def cancel(self) -> None:
        """Ask the worker to stop (idempotent)."""
        self.requested = True
        self.event.set()


async def hello(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Version handshake; must be the first request of a connection."""
    theirs = p["protocol"]
    if theirs != PROTOCOL_VERSION:
        side = ("the QLoRA Studio extension is older than this backend: update the extension"
                if theirs < PROTOCOL_VERSION else
                "the backend is older than the extension: update it with `pip install -U qlora-studio` in the backend's Python")
        raise ProtocolError("version_mismatch", f"protocol mismatch: client speaks {theirs}, backend speaks {PROTOCOL_VERSION}; {side}",
                            {"client_protocol": theirs, "server_protocol": PROTOCOL_VERSION})
    conn.hello_done = True
    return {"protocol": PROTOCOL_VERSION, "backend_version": __version__, "server_pid": srv.pid,
            "runs_dir": str(srv.supervisor.runs_dir), "capabilities": await srv.capabilities()}


async def recipe_validate(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Validate a recipe's text (or a file on the backend host); with a file path, its data files too."""
    from ..recipe import validate_recipe_text

    text, source, path = p.get("text"), p.get("source"), p.get("path")
    if text is None:
        if not path:
            raise ProtocolError("invalid_params", "recipe.validate needs `text` or `path`")
        text, source = _read_text(srv.paths.confine(path, "recipe")), source or path
    # Data files are checked against the recipe's folder: the file's, or an absolute source's.
    where = path or (source if source and Path(source).is_absolute() else None)
    recipe_dir = Path(where).expanduser().parent if where else None
    issues = await asyncio.to_thread(validate_recipe_text, text, source or "<recipe>", recipe_dir)
    return {"issues": [_issue(i) for i in issues]}


async def dataset_preview(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Examples as the trainer sees them, bad rows, stats."""
    from ..data import preview

    recipe = await _load_recipe(srv.paths.confine(p["recipe_path"], "recipe"))
    out = await asyncio.to_thread(preview, recipe, p["limit"], p["offset"])
    return dict(out)


async def run_start(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Spawn a run process (or resume one)."""
    if p.get("recipe_path"):
        srv.paths.confine(p["recipe_path"], "recipe")
    if p.get("runs_dir"):
        srv.paths.confine(p["runs_dir"], "runs folder")
    rec = await srv.supervisor.start(p.get("recipe_path"), p.get("run_id"), p["resume"], p.get("max_steps"),
                                     p.get("memory_limit_mb"), p.get("runs_dir"))
    return srv.supervisor.info(rec)


async def run_stop(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Graceful stop (checkpoint, then end); a second call kills."""
    return {"run_id": p["run_id"], "action": srv.supervisor.stop(p["run_id"], p["force"])}


async def run_list(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Every run with its reconciled state, including the runs under the runs folder (`output.dir`)
    of each recipe in `recipe_paths`, such as runs the CLI started next to a recipe."""
    for path in p.get("recipe_paths") or []:
        root = await _runs_folder_of(srv, path)
        if root is not None:
            srv.supervisor.add_runs_folder(root)
    return {"runs": srv.supervisor.list()}


async def _runs_folder_of(srv: BackendServer, path: str) -> Path | None:
    # A recipe that cannot be read has no runs folder to list; its own diagnostics say why.
    from ..rundir import runs_root_for

    try:
        return runs_root_for(await _load_recipe(srv.paths.confine(path, "recipe")))
    except ProtocolError as e:
        srv._log(f"run.list: no runs folder for {path}: {e}")
        return None


async def run_attach(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Replay events after `after_seq`, then stream live ones to this connection."""
    rec = srv.supervisor.get(p["run_id"])
    rec.tail.poll()  # deliver what is on disk to earlier watchers before this one's replay cut
    last = conn.attach(rec.tail, p["after_seq"])
    return {"run_id": rec.run_id, "last_seq": last, "state": rec.tail.state}


async def run_detach(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Stop streaming a run to this connection."""
    return {"run_id": p["run_id"], "detached": conn.detach(p["run_id"])}


async def generate(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Stream generated text as partials; `generate.cancel` ends it early."""
    from ..generate import stream_generate

    if not p.get("messages") and p.get("prompt") is None:
        raise ProtocolError("invalid_params", "generate needs `messages` (a chat) or `prompt` (raw text)")
    if p.get("adapter"):
        srv.paths.confine(p["adapter"], "adapter folder")
    stop = threading.Event()
    cancel = Cancel(stop)
    conn.cancels[rid] = cancel
    loop = asyncio.get_running_loop()
    pieces: list[str] = []

    def work() -> None:
        kwargs = {k: p.get(k) for k in ("base_model", "adapter", "messages", "prompt", "max_new_tokens", "temperature",
                                         "top_p", "top_k", "repetition_penalty")}
        loaded, lock = srv.models.get(p["base_model"], p.get("adapter"))
        with lock:
            for piece in stream_generate(stop_event=stop, loaded=loaded, **kwargs):
                pieces.append(piece)
                loop.call_soon_threadsafe(conn.send_partial, rid, {"text": piece})
                if stop.is_set():
                    break

    try:
        await asyncio.to_thread(work)
    finally:
        conn.cancels.pop(rid, None)
    # stream_generate may set its stop event itself when it ends; only a cancel request counts.
    return {"text": "".join(pieces), "cancelled": cancel.requested, "pieces": len(pieces)}


async def generate_cancel(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Cancel a running generate request of this connection."""
    c = conn.cancels.get(p["request_id"])
    if c:
        c.cancel()
    return {"cancelled": c is not None}


async def adapter_info(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Base model, run, recipe, generation defaults and checkpoints of an adapter (or a run's adapter)."""
    from ..adapters import adapter_info as info

    if (p.get("adapter_dir") is None) == (p.get("run_id") is None):
        raise ProtocolError("invalid_params", "adapter.info needs exactly one of `adapter_dir` and `run_id`")
    run_dir = srv.supervisor.get(p["run_id"]).run_dir if p.get("run_id") else None
    adapter_dir = srv.paths.confine(p["adapter_dir"], "adapter folder") if p.get("adapter_dir") else None
    return await asyncio.to_thread(info, adapter_dir, run_dir)


async def adapter_merge(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Merge an adapter into its base, with progress partials."""
    from ..merge import merge_adapter

    adapter = srv.paths.confine(p["adapter_dir"], "adapter folder")
    srv.paths.confine(p["out_dir"], "merge output folder")
    if not (adapter / "adapter_config.json").is_file():
        raise ProtocolError("invalid_params", f"{adapter} holds no adapter_config.json: pick an adapter folder (a run's adapter/ or checkpoints/step-N/)")
    loop = asyncio.get_running_loop()

    def progress(fraction: float, message: str) -> None:
        loop.call_soon_threadsafe(conn.send_partial, rid, {"fraction": max(0.0, min(1.0, float(fraction))), "message": str(message)})

    out = await asyncio.to_thread(merge_adapter, str(adapter), p["out_dir"], dtype=p["dtype"], progress=progress)
    res = dict(out)
    res["out_dir"] = str(res.get("out_dir", p["out_dir"]))
    res.setdefault("max_abs_logit_diff", None)
    return res


async def model_introspect(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """A base model's config and linear module names."""
    from ..generate import introspect_model

    return dict(await asyncio.to_thread(introspect_model, p["base_model"]))


async def memory_estimate(srv: BackendServer, conn: Connection, rid: Any, p: dict[str, Any]) -> Any:
    """Estimated peak memory of a recipe (a file on the host, or its text)."""
    from ..estimate import estimate_memory

    if p.get("recipe_path"):
        recipe = await _load_recipe(srv.paths.confine(p["recipe_path"], "recipe"))
    elif p.get("text") is not None:
        recipe = await _recipe_from_text(p["text"], str(srv.paths.confine(p["recipe_dir"], "recipe folder"))
                                         if p.get("recipe_dir") else None)
    else:
        raise ProtocolError("invalid_params", "memory.estimate needs `recipe_path` or `text`")
    return dict(await asyncio.to_thread(estimate_memory, recipe, p.get("model_config")))


HANDLERS: dict[str, Handler] = {
    "hello": hello,
    "recipe.validate": recipe_validate,
    "dataset.preview": dataset_preview,
    "run.start": run_start,
    "run.stop": run_stop,
    "run.list": run_list,
    "run.attach": run_attach,
    "run.detach": run_detach,
    "generate": generate,
    "generate.cancel": generate_cancel,
    "adapter.info": adapter_info,
    "adapter.merge": adapter_merge,
    "model.introspect": model_introspect,
    "memory.estimate": memory_estimate,
}


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise ProtocolError("not_found", f"cannot read {path} on the backend host: {e.strerror}") from None


def _issue(i: Any) -> dict[str, Any]:
    # to_dict keeps severity (warnings must not show as errors) and the quick-fix suggestion.
    return dict(i.to_dict())


async def _load_recipe(path: str | Path) -> Any:
    from ..recipe import RecipeError, load_recipe

    if not Path(path).expanduser().is_file():
        raise ProtocolError("not_found", f"recipe {path} does not exist on the backend host")
    try:
        return await asyncio.to_thread(load_recipe, path)
    except RecipeError as e:
        raise ProtocolError("invalid_params", f"the recipe has errors: {e}", {"issues": [_issue(i) for i in e.issues]}) from None


async def _recipe_from_text(text: str, recipe_dir: str | None) -> Any:
    from ..recipe import RecipeError, recipe_from_text

    # Relative paths in an unsaved buffer resolve against its folder, not a temp dir.
    base = Path(recipe_dir).expanduser() if recipe_dir else Path.cwd()
    try:
        return await asyncio.to_thread(recipe_from_text, text, base)
    except RecipeError as e:
        raise ProtocolError("invalid_params", f"the recipe has errors: {e}", {"issues": [_issue(i) for i in e.issues]}) from None
