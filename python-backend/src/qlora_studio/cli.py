"""`qlora-studio`: validate, run, preview, generate, merge, serve.

Exit codes (also in --help): 0 ok, 1 internal error, 2 bad recipe or usage, 3 bad data,
4 out of memory, 130 stopped by a signal.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

EXIT_CODES_HELP = """exit codes:
  0    ok
  1    internal error (a bug or an environment problem; see the traceback)
  2    bad recipe or bad usage (every issue is listed with its line)
  3    bad data (every bad row is listed with its file and line)
  4    out of memory (the message names the recipe settings to change)
  5    busy: the run is being written by another training process (one trainer per run), or
       for `serve`, another backend already serves the runs folder
  130  stopped by SIGINT/SIGTERM (a checkpoint was saved; resume with --resume)
"""


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _quiet_logs() -> None:
    # bitsandbytes warns at import that an optional hub-downloaded CPU kernel is missing; we never
    # want that kernel (nothing is downloaded at run time), so the warning is noise.
    import logging
    import warnings

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*use_reentrant.*")


def _quiet_libraries() -> None:
    # Library progress bars and deprecation chatter would bury our own output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


# ---------------------------------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a recipe: print every issue with its line; exit 2 when invalid."""
    from .errors import StudioError
    from .recipe import load_recipe

    err = _stderr_console()
    try:
        recipe = load_recipe(args.recipe)
    except StudioError as e:
        err.print(str(e), markup=False)
        return e.exit_code
    for w in recipe.warnings:
        err.print(f"{args.recipe}:{w.line}:{w.column}: warning: {w.path}: {w.message}", markup=False)
    print(f"ok: {args.recipe} is a valid recipe")
    return 0


# ---------------------------------------------------------------------------------------- run
class _RunDisplay:
    """A live status line (rich) on a terminal; sparse plain lines when piped (e.g. under the server)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = _stderr_console()
        self.tty = self.console.is_terminal
        self.progress = Progress(TextColumn("[bold]{task.fields[state]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
                                 transient=False, disable=not self.tty)
        self.task = self.progress.add_task("run", total=None, state="loading", info="")
        self.last_plain = -1
        self.saw_error = False

    def __enter__(self) -> "_RunDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def on_event(self, ev: dict[str, Any]) -> None:
        """Feed one run event to the display."""
        t, d = ev["type"], ev["data"]
        if t == "status":
            self.progress.update(self.task, state=d["state"], total=d.get("total_steps") or None)
            if not self.tty:  # a failure's message was already printed with its error event
                msg = "" if d["state"] == "failed" else d.get("message", "")
                self.console.print(f"[{d['state']}] {msg}".rstrip(), markup=False)
        elif t == "metrics":
            info = f"loss {d['loss']:.4f}  lr {d['lr']:.2e}  {d['tokens_per_s']:.0f} tok/s"
            self.progress.update(self.task, completed=d["step"], total=d["total_steps"], info=info)
            tenth = max(1, d["total_steps"] // 10)
            if not self.tty and (d["step"] % tenth == 0 or d["step"] == d["total_steps"]):
                self.console.print(f"step {d['step']}/{d['total_steps']}  {info}", markup=False)
        elif t == "eval":
            self.console.print(f"eval step {d['step']}: loss {d['eval_loss']:.4f}"
                               + ("  (best)" if d["is_best"] else ""), markup=False)
        elif t == "progress":
            done, total = d.get("done"), d.get("total")
            info = f"{d['message']} {done / 2**20:.0f}/{total / 2**20:.0f} MiB" if done is not None and total else d["message"]
            self.progress.update(self.task, state=d["phase"], info=info)
            if not self.tty and done is None:
                self.console.print(f"[{d['phase']}] {d['message']}", markup=False)
        elif t == "log" and d["level"] != "info":
            self.console.print(f"{d['level']}: {d['message']}", markup=False)
        elif t == "error":
            self.saw_error = True
            self.console.print(f"error ({d['kind']}): {d['message']}", markup=False)
            if d.get("hint"):
                self.console.print(f"hint: {d['hint']}", markup=False)


def _run_argv(args: argparse.Namespace) -> list[str]:
    """The `run` arguments each rank is started with (no --gpus: the launcher already did that)."""
    argv = ["run", args.recipe]
    for flag, value in (("--output-dir", args.output_dir), ("--max-steps", args.max_steps), ("--run-id", args.run_id),
                        ("--run-dir", args.run_dir)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--resume"] if args.resume else [])


def _launch_ranks(args: argparse.Namespace) -> int | None:
    """With --gpus N (or distributed.gpus: N) above 1, run N ranks and return their exit code; else None."""
    from .train.distributed import DistributedSetupError, check_processes, launch, launched_rank, requested_processes

    if launched_rank().enabled:
        return None
    n, _strategy = requested_processes(args.gpus, args.recipe)
    if n <= 1:
        return None
    try:
        check_processes(n)
    except DistributedSetupError as e:
        _stderr_console().print(f"error: {e}", markup=False)
        return 2
    return launch(n, _run_argv(args))


def cmd_run(args: argparse.Namespace) -> int:
    """Train a recipe; prints the run directory (several GPUs: one rank per GPU, rank 0 prints)."""
    _quiet_libraries()
    if args.gpus is not None and args.gpus < 1:
        _stderr_console().print("error: --gpus takes a count of 1 or more", markup=False)
        return 2
    from .errors import StudioError

    if not args.resume and args.run_dir is None:
        # A recipe that cannot train (bad value, missing data file) is reported at its lines and
        # makes no run folder: there is nothing to resume or to look at in one.
        from .recipe import load_recipe

        try:
            load_recipe(args.recipe)
        except StudioError as e:
            _stderr_console().print(f"error: {e}", markup=False)
            return e.exit_code
    launched = _launch_ranks(args)
    if launched is not None:
        return launched
    from .train import RunFailed, RunStopped, run_training
    from .train.distributed import launched_rank

    if not launched_rank().is_main:
        return _run_quiet_rank(args)

    with _RunDisplay() as display:
        try:
            run_dir = run_training(args.recipe, output_dir=args.output_dir, max_steps=args.max_steps,
                                   run_id=args.run_id, resume=args.resume, on_event=display.on_event,
                                   run_dir=args.run_dir)
        except RunFailed as e:
            if not display.saw_error:  # the event log could not be written (read-only or full disk)
                display.console.print(f"error: {e.failure.message}", markup=False)
                if e.failure.hint:
                    display.console.print(f"hint: {e.failure.hint}", markup=False)
            if e.failure.kind == "exception" and e.failure.details:
                display.console.print(e.failure.details, markup=False)
            if e.run_dir:
                display.console.print(f"run directory: {e.run_dir}", markup=False)
            return e.exit_code
        except RunStopped as e:
            display.console.print(str(e), markup=False)
            print(e.run_dir)
            return e.exit_code
        except StudioError as e:
            display.console.print(f"error: {e}", markup=False)
            return e.exit_code
    print(run_dir)
    return 0


def _run_quiet_rank(args: argparse.Namespace) -> int:
    """A rank other than 0: trains its share and prints nothing (rank 0 reports the run)."""
    from .errors import StudioError
    from .train import RunFailed, RunStopped, run_training

    try:
        run_training(args.recipe, output_dir=args.output_dir, max_steps=args.max_steps,
                     run_id=args.run_id, resume=args.resume, run_dir=args.run_dir)
    except (RunFailed, RunStopped, StudioError) as e:
        return e.exit_code
    return 0


# ---------------------------------------------------------------------------------------- preview
def cmd_preview(args: argparse.Namespace) -> int:
    """Print examples as the trainer sees them: trained tokens highlighted, counts, bad rows."""
    _quiet_libraries()
    from rich.console import Console
    from rich.text import Text

    from .data import preview
    from .errors import StudioError
    from .recipe import load_recipe

    out, err = Console(highlight=False, soft_wrap=True), _stderr_console()
    try:
        result = preview(load_recipe(args.recipe), limit=args.limit, offset=args.offset)
    except StudioError as e:
        err.print(str(e), markup=False)
        return e.exit_code
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 3 if result.get("bad_rows") else 0
    for ex in result.get("examples", []):
        head = f"line {ex['line']}: {ex['n_tokens']} tokens, {ex['n_trained']} trained"
        out.print(head + ("  [truncated]" if ex.get("truncated") else ""), style="bold", markup=False)
        text = Text()
        for tok in ex["tokens"]:
            text.append(tok["text"], style="bold green" if tok["trained"] else "dim")
        out.print(text)
        out.print()
    bad = result.get("bad_rows", [])
    for b in bad:
        err.print(f"{b['source']}:{b['line']}: {b['kind']}: {b['message']}", markup=False)
    out.print(f"stats: {json.dumps(result.get('stats', {}), default=str)}", markup=False)
    out.print("legend: trained tokens in bold green, masked tokens dimmed", style="dim", markup=False)
    return 3 if bad else 0


# ---------------------------------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    """Stream a completion of --prompt to stdout."""
    _quiet_libraries()
    from .adapters import adapter_info
    from .errors import StudioError
    from .generate import stream_generate

    try:
        base = args.base or (adapter_info(args.adapter)["base_model"] if args.adapter else None)
    except StudioError as e:
        _stderr_console().print(f"error: {e}", markup=False)
        return e.exit_code
    if not base:
        _stderr_console().print("error: pass --base MODEL (or an --adapter trained by QLoRA Studio)", markup=False)
        return 2
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    kwargs: dict[str, Any] = {"prompt": prompt} if args.raw else {"messages": [{"role": "user", "content": prompt}]}
    stop = threading.Event()
    try:
        for piece in stream_generate(base_model=base, adapter=args.adapter, max_new_tokens=args.max_new_tokens,
                                     temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                                     repetition_penalty=args.repetition_penalty, stop_event=stop, **kwargs):
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stop.set()
        return 130
    except (FileNotFoundError, ValueError) as e:
        _stderr_console().print(f"error: {e}", markup=False)
        return 2
    sys.stdout.write("\n")
    return 0


# ---------------------------------------------------------------------------------------- merge
def cmd_merge(args: argparse.Namespace) -> int:
    """Merge an adapter into its unquantized base; print the verification figure."""
    _quiet_libraries()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .errors import StudioError
    from .merge import merge_adapter

    err = _stderr_console()
    with Progress(TextColumn("merge"), BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, disable=not err.is_terminal) as bar:
        task = bar.add_task("starting", total=1.0)
        try:
            result = merge_adapter(args.adapter_dir, args.out, dtype=args.dtype, overwrite=args.force,
                                   base_model=args.base,
                                   progress=lambda f, m: bar.update(task, completed=f, description=m))
        except StudioError as e:
            err.print(f"error: {e}", markup=False)
            return e.exit_code
    print(f"merged model: {result['out_dir']}")
    print(f"verification: max |logit diff| merged vs base+adapter ({result['dtype']}, {result['prompts']} prompts) "
          f"= {result['max_abs_logit_diff']:.6g} (largest logit {result['max_abs_logit']:.4g})")
    return 0


# ---------------------------------------------------------------------------------------- parser
def _count(minimum: int) -> Any:
    """An argparse type: an integer >= minimum, refused with a usage error (exit 2) otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: use a number >= {minimum}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    p = argparse.ArgumentParser(prog="qlora-studio", description="QLoRA Studio backend: recipes, QLoRA runs, "
                                "generation, merging, and the editor's server.", epilog=EXIT_CODES_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a recipe and list every issue with its line")
    v.add_argument("recipe")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="train a recipe (QLoRA)", epilog=EXIT_CODES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("recipe")
    r.add_argument("--output-dir", help="folder that holds runs/<run_id>/ (default: output.dir of the recipe)")
    r.add_argument("--max-steps", type=_count(1), help="override training.max_steps (>= 1)")
    r.add_argument("--run-id", help="id of the run (default: generated from output.run_name); with --resume, the run to continue")
    r.add_argument("--run-dir", help="the run folder to write, as is (the server passes the one it made); "
                   "overrides --output-dir and --run-id")
    r.add_argument("--resume", action="store_true",
                   help="continue a run from its last checkpoint (with --run-id that run, else the newest resumable run of this recipe)")
    r.add_argument("--gpus", type=int, help="train on N GPUs of this host, one process each (data parallel through "
                   "torch.distributed.run); overrides distributed.gpus of the recipe")
    r.set_defaults(func=cmd_run)

    pv = sub.add_parser("preview", help="show examples as the trainer sees them (trained tokens highlighted)")
    pv.add_argument("recipe")
    pv.add_argument("--limit", type=_count(0), default=5, help="examples to show (>= 0)")
    pv.add_argument("--offset", type=_count(0), default=0, help="index of the first example shown (>= 0)")
    pv.add_argument("--json", action="store_true", help="print the preview as JSON")
    pv.set_defaults(func=cmd_preview)

    g = sub.add_parser("generate", help="stream a completion from a base model, optionally with an adapter")
    g.add_argument("--base", help="base model folder or Hugging Face id (default: the adapter's base)")
    g.add_argument("--adapter", help="adapter folder (a run's adapter/ or checkpoints/step-N)")
    g.add_argument("--prompt", help="user message (read from stdin when omitted)")
    g.add_argument("--raw", action="store_true", help="use --prompt as raw text, without the chat template")
    g.add_argument("--max-new-tokens", type=int, default=256)
    g.add_argument("--temperature", type=float, default=0.7, help="0 = greedy")
    g.add_argument("--top-p", type=float, default=0.9)
    g.add_argument("--top-k", type=int, default=50)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.set_defaults(func=cmd_generate)

    m = sub.add_parser("merge", help="merge an adapter into its unquantized base and verify it")
    m.add_argument("adapter_dir")
    m.add_argument("--out", required=True, help="output folder (must be empty unless --force)")
    m.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    m.add_argument("--base", help="base model (default: the one the adapter was trained on)")
    m.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    m.set_defaults(func=cmd_merge)

    # The server engineer owns `serve`; the rest of the CLI must keep working if that module is
    # missing or broken, so its import is guarded.
    try:
        from .server import cli as server_cli

        server_cli.add_parser(sub)
    except ImportError as e:
        s = sub.add_parser("serve", help="(unavailable) serve the protocol for the editor")
        s.set_defaults(func=lambda _a, _e=e: _unavailable("serve", _e))
    return p


def _unavailable(name: str, err: BaseException) -> int:
    _stderr_console().print(f"error: `{name}` is not available in this install: {err}", markup=False)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    _quiet_logs()
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except KeyboardInterrupt:
        code = 130
    if args.func is cmd_run:
        from .train.distributed import report_rank0_exit

        report_rank0_exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
