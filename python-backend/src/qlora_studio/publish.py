"""Publish a folder atomically and durably: a reader (or a restart after power loss) sees the old
folder or the complete new one, never a part of it.

A rename is atomic, but not durable until its directory is flushed, and the files renamed may
still sit in the page cache: after a power cut the new name can point at empty files, or the
rename can vanish and leave the complete folder stranded under its temporary name. So: fsync
every file and folder of the temp tree, rename, then fsync the parent directory.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush a directory's entries (the names in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file of a tree, then every folder of it, deepest first."""
    dirs = [folder]
    for p in folder.rglob("*"):
        if p.is_dir():
            dirs.append(p)
        elif p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        fsync_dir(d)


def publish_dir(tmp: Path, final: Path) -> Path:
    """Make the complete folder `tmp` appear as `final` (replacing an older `final`), durably.

    `tmp` must be a sibling of `final` (a rename never crosses file systems).
    """
    tmp, final = Path(tmp), Path(final)
    fsync_tree(tmp)
    parent = final.parent
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
        fsync_dir(parent)
    return final
