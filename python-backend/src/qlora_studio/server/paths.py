"""Which files a client may name: the allow-list of folders the server was started for.

The token holder is the user, but a leaked token must not turn the server into a way to read or
write any file of the host. Every path a request names (recipes, adapters, merge outputs) must
resolve, symlinks followed, inside one of these roots; otherwise the request is refused without
opening the file, so no byte of it can come back in an error.
"""
from __future__ import annotations

import os
from pathlib import Path

from .protocol import ProtocolError


def default_roots(runs_dir: Path) -> list[Path]:
    """Without --allow-root: the folder the server was started in (the workspace), the runs
    folder and the folder that holds it (where recipes live beside their runs)."""
    runs = Path(runs_dir).expanduser().resolve()
    return [Path.cwd().resolve(), runs, runs.parent]


class PathGuard:
    """Confines request paths to a fixed list of roots."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in roots]

    def confine(self, path: str | os.PathLike[str], what: str) -> Path:
        """The resolved path when it lies inside a root; a ProtocolError naming the roots otherwise."""
        resolved = Path(path).expanduser().resolve()
        if any(resolved == r or r in resolved.parents for r in self.roots):
            return resolved
        listed = ", ".join(str(r) for r in self.roots)
        raise ProtocolError("invalid_params", f"{what} {path} is outside the folders this backend serves ({listed}); "
                            "use a file in the workspace, or start the backend with --allow-root FOLDER")
