"""How a failed run is classified: error kind, exit code and the hint a user acts on."""
from __future__ import annotations

import errno
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EXIT_BAD_DATA, EXIT_BAD_RECIPE, EXIT_INTERNAL, EXIT_OK, EXIT_OOM, EXIT_STOPPED, StudioError

__all__ = ["EXIT_BAD_DATA", "EXIT_BAD_RECIPE", "EXIT_INTERNAL", "EXIT_OK", "EXIT_OOM", "EXIT_STOPPED", "OOM_HINT",
           "Failure", "classify", "is_oom", "looks_like_oom"]

OOM_HINT = (
    "Out of memory. Lower training.micro_batch_size (raise training.grad_accum to keep the batch), "
    "lower data.max_seq_len, set training.gradient_checkpointing: true, or lower lora.r; if another "
    "process shares the GPU, set training.memory_budget_gib to what this run may use (0 = the recipe's own peak); "
    "the last checkpoint is intact and `qlora-studio run --resume` continues from it."
)


# How out-of-memory reads in an exception message or a dead process's output (Python, PyTorch's
# CPU and CUDA allocators, C++ allocation failures).
OOM_MARKERS = ("memoryerror", "outofmemoryerror", "out of memory", "std::bad_alloc",
               "cannot allocate memory", "can't allocate memory")


def looks_like_oom(text: str) -> bool:
    """True when text (an error message or a process's output) reports running out of memory."""
    low = text.lower()
    return any(m in low for m in OOM_MARKERS)


@dataclass
class Failure:
    """A classified exception: what the error event says and how the process exits."""

    kind: str
    message: str
    exit_code: int
    hint: str | None = None
    details: str | None = None

    def event_data(self) -> dict[str, Any]:
        """The data of the `error` event."""
        d: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.hint:
            d["hint"] = self.hint
        if self.details:
            d["details"] = self.details
        return d


def is_oom(err: BaseException) -> bool:
    """True for every way PyTorch and Python report running out of memory."""
    if isinstance(err, MemoryError):
        return True
    try:
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # classification must work even when torch itself failed to import
        pass
    return isinstance(err, RuntimeError) and looks_like_oom(str(err))


_DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied", errno.EIO: "the disk reported an I/O error"}
_LOW_SPACE = 32 << 20


def disk_failure(err: BaseException, folder: Path | None) -> Failure | None:
    """A Failure naming the disk problem behind `err` (full, read-only, not writable), or None.

    Libraries wrap the OS error (torch.save says only "file write failed"), so the cause chain
    is searched, and an I/O or runtime error (torch says "unexpected pos") on a nearly full disk is
    called disk full too.
    """
    cause: BaseException | None = err
    reason, where = None, None
    while cause is not None and reason is None:
        if isinstance(cause, OSError) and cause.errno in _DISK_ERRNOS:
            reason, where = _DISK_ERRNOS[cause.errno], cause.filename
        cause = cause.__cause__ or cause.__context__
    text = str(err).lower()
    wrapped = isinstance(err, (OSError, RuntimeError)) or any(w in text for w in ("write", "space", "os error 28"))
    if reason is None and folder is not None and wrapped:
        try:
            if shutil.disk_usage(folder).free < _LOW_SPACE:
                reason = "the disk is full"
        except OSError:
            pass
    if reason is None:
        return None
    place = folder if folder is not None else where
    hint = (f"Free space on the disk that holds {place} (or set output.dir / --output-dir to another disk), "
            "then resume the run with --resume." if "full" in reason or "quota" in reason else
            f"Make {place} writable (or set output.dir / --output-dir to a writable folder), then run again.")
    return Failure("exception", f"cannot write the run folder {place}: {reason}"
                   + (f" (writing {where})" if where else "") + f" [{type(err).__name__}: {str(err)[:200]}]",
                   EXIT_INTERNAL, hint)


def classify(err: BaseException) -> Failure:
    """Map an exception from setup or training to a Failure (StudioError says it itself)."""
    if isinstance(err, StudioError):
        return Failure(err.kind, str(err), err.exit_code, err.hint)
    if is_oom(err):
        return Failure("oom", f"{type(err).__name__}: {str(err)[:500]}", EXIT_OOM, OOM_HINT,
                       "".join(traceback.format_exception(err))[-4000:])
    return Failure("exception", f"{type(err).__name__}: {err}", EXIT_INTERNAL,
                   "This is a bug or an environment problem; the traceback is in details.",
                   "".join(traceback.format_exception(err)))
