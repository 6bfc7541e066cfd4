"""How a failed run is classified: error kind, exit code and the hint a user acts on."""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from ..errors import EXIT_BAD_DATA, EXIT_BAD_RECIPE, EXIT_INTERNAL, EXIT_OK, EXIT_OOM, EXIT_STOPPED, StudioError

__all__ = ["EXIT_BAD_DATA", "EXIT_BAD_RECIPE", "EXIT_INTERNAL", "EXIT_OK", "EXIT_OOM", "EXIT_STOPPED", "OOM_HINT",
           "Failure", "classify", "is_oom", "looks_like_oom"]

OOM_HINT = (
    "Out of memory. Lower training.micro_batch_size (raise training.grad_accum to keep the batch), "
    "lower data.max_seq_len, set training.gradient_checkpointing: true, or lower lora.r; "
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
