"""One error base for the whole backend: what went wrong (`kind`), how the CLI exits, what the
protocol answers.

Every error a user can act on derives from StudioError and carries three class attributes:
    kind           the `error` event's kind (oom | bad_data | bad_recipe | exception) or, for errors
                   that never reach an event log, a word for the log (usage)
    exit_code      what `qlora-studio` returns (see EXIT_CODES_HELP in cli.py)
    protocol_code  the protocol error code the server answers with (src/protocol/frames.ts)
and `hint`, the one thing to do about it. The CLI, the server and the engine read these
attributes; nobody maps class names to codes.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_RECIPE = 2
EXIT_BAD_DATA = 3
EXIT_OOM = 4
EXIT_RUN_BUSY = 5
EXIT_STOPPED = 130


class StudioError(Exception):
    """Base of every error the user can act on; the message says what is wrong and what to do."""

    kind: str = "exception"
    exit_code: int = EXIT_INTERNAL
    protocol_code: str = "internal"
    hint: str | None = None


class UsageError(StudioError, ValueError):
    """Bad arguments or a request that does not fit the state of things."""

    kind = "usage"
    exit_code = EXIT_BAD_RECIPE
    protocol_code = "invalid_params"


class NotFoundError(StudioError, FileNotFoundError):
    """A file, folder or run the request names does not exist."""

    kind = "usage"
    exit_code = EXIT_BAD_RECIPE
    protocol_code = "not_found"


class RunExistsError(UsageError):
    """A new run was asked for under an id that is already taken."""

    protocol_code = "conflict"


class NotResumableError(UsageError):
    """A resume of a run that cannot be resumed (completed, or no checkpoint to continue from)."""

    protocol_code = "not_resumable"


class RunLiveError(UsageError):
    """Another training process holds the run (one trainer per run folder)."""

    exit_code = EXIT_RUN_BUSY
    protocol_code = "run_live"
