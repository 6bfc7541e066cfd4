"""Power loss during a run, on a real ext4 file system: what was fsynced survives, and resume works.

A small ext4 image is attached to a loop device and mounted with `commit=300`, so for the length
of the test nothing reaches the image unless something fsyncs (no periodic journal commit; the
kernel's 30 s dirty-page expiry is not reached either). The real CLI trains the tiny example
there with a checkpoint every two steps. One step after a checkpoint the trainer is stopped and
killed, and the image file is copied at once, without a sync or an unmount.

Which layer holds what: the ext4 page cache and its uncommitted journal transaction sit above
the loop device and are NOT in the copy; whatever ext4 submitted to the loop device (fsynced
data, committed journal blocks) was written by the loop driver into the backing file and IS in
the copy (the copy reads the backing file through the same page cache the loop driver writes
into). So the copy is the disk as a power cut would leave it. The test proves that: a file
written just before the cut without fsync must be absent from the copy.

The copy is then checked with `e2fsck -fy` (which replays the journal), mounted, and must hold
the last complete checkpoint, a whole event log and the frozen recipe; `run --resume` there
continues from that checkpoint to the end, its first step bit-identical to the lost one.

Needs root, `mkfs.ext4`, `e2fsck`, `losetup` and a free loop device; without them it says why
and does not run, and test_hostile_runs.py's fault injection of the fsync/rename order of a
publish still covers the path.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import cli, cli_popen, write_recipe_variant

_TOOLS = ("mkfs.ext4", "e2fsck", "losetup", "mount", "umount")
_IMAGE_MIB = 96
_SAVE_EVERY = 2
_MAX_STEPS = 6


def _why_not() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root to attach a loop device and mount ext4"
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        return f"needs {', '.join(missing)} on PATH"
    res = subprocess.run(["losetup", "-f"], capture_output=True, text=True)
    if res.returncode != 0:
        return f"no free loop device: {res.stderr.strip()}"
    return None


def _sh(*args: str) -> str:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{' '.join(args)}: {res.stderr.strip()}"
    return res.stdout.strip()


class _Disk:
    """An image file on a loop device, mounted; `close()` always leaves neither behind."""

    def __init__(self, image: Path, where: Path, options: str) -> None:
        self.where = where
        self.loop: str | None = None
        self.mounted = False
        where.mkdir(parents=True, exist_ok=True)
        try:
            self.loop = _sh("losetup", "--find", "--show", str(image))
            _sh("mount", "-t", "ext4", "-o", options, self.loop, str(where))
        except AssertionError:
            self.close()
            raise
        self.mounted = True

    def close(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.where)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(self.where)], capture_output=True)
            self.mounted = False
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], capture_output=True)
            self.loop = None


def _events_in(raw: bytes) -> list[dict]:
    return [json.loads(line) for line in raw.splitlines()]


def _events(path: Path) -> list[dict]:
    """Every line of an event log, each of which must be whole JSON (a torn line fails here)."""
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), f"{path} ends mid-line"
    return _events_in(raw)


def _wait_for(proc: subprocess.Popen[str], log: Path, done: Callable[[list[dict]], bool],
              timeout: float = 90) -> list[dict]:
    """The run's events once `done` holds for them (complete lines only)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()[1][-2000:]}"
        if log.exists():
            raw = log.read_bytes()
            lines = _events_in(raw[:raw.rfind(b"\n") + 1])
            if done(lines):
                return lines
        time.sleep(0.02)
    raise AssertionError("the run did not get there in time")


def _metrics(events: list[dict]) -> dict[int, float]:
    return {e["data"]["step"]: e["data"]["loss"] for e in events if e["type"] == "metrics"}


def test_power_cut_on_ext4_keeps_the_last_checkpoint_and_resume_finishes(tiny_dir: Path, tmp_path: Path) -> None:
    reason = _why_not()
    if reason:
        pytest.skip(f"{reason}; the fsync/rename fault injection in test_hostile_runs.py covers the path")
    recipe = write_recipe_variant(tiny_dir, "powercut", {
        "training.max_steps": _MAX_STEPS, "training.save_every": _SAVE_EVERY, "training.eval_every": 0,
        "training.keep_checkpoints": 2})
    image, copy = tmp_path / "disk.img", tmp_path / "after-power-cut.img"
    with image.open("wb") as f:
        f.truncate(_IMAGE_MIB << 20)
    # Inode tables and journal initialised now, so no background thread writes to the image later.
    _sh("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))
    disks: list[_Disk] = []
    proc: subprocess.Popen[str] | None = None
    try:
        try:
            disk = _Disk(image, tmp_path / "live", "commit=300")
        except AssertionError as err:  # e.g. a container that may attach a loop device but not mount
            pytest.skip(f"cannot mount an ext4 image here ({err}); the fsync/rename fault injection in "
                        "test_hostile_runs.py covers the path")
        disks.append(disk)
        runs = disk.where / "runs"
        proc = cli_popen("run", str(recipe), "--output-dir", str(runs), "--run-id", "p")
        log = runs / "p" / "events.jsonl"
        # A step after a checkpoint: the checkpoint's fsyncs are done, the step's own writes are not.
        live = _wait_for(proc, log, lambda evs: any(e["type"] == "checkpoint" for e in evs)
                         and max(_metrics(evs), default=0) > max(e["data"]["step"] for e in evs
                                                                 if e["type"] == "checkpoint"))
        proc.send_signal(signal.SIGSTOP)
        raw = log.read_bytes()
        live = _events_in(raw[:raw.rfind(b"\n") + 1])  # everything the stopped trainer wrote
        last_ck = max(e["data"]["step"] for e in live if e["type"] == "checkpoint")
        lost_step = last_ck + 1
        lost_loss = _metrics(live).get(lost_step)  # absent only if a checkpoint slipped in before the stop
        payload = os.urandom(1 << 16)
        (disk.where / "unsynced.bin").write_bytes(payload)  # never fsynced: a power cut must take it
        proc.kill()
        proc.wait(timeout=30)
        # The power cut: the backing file as the loop driver left it, no sync, no unmount.
        _sh("cp", "--sparse=always", str(image), str(copy))
        disk.close()

        fsck = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True, text=True, timeout=60)
        assert fsck.returncode <= 1, f"e2fsck found damage it could not fix: {fsck.stdout[-2000:]}"
        after = _Disk(copy, tmp_path / "after", "defaults")
        disks.append(after)
        kept = after.where / "unsynced.bin"
        assert not kept.exists() or kept.read_bytes() != payload, \
            "the simulated power cut kept data that was never fsynced: it would prove nothing"

        run_dir = after.where / "runs" / "p"
        ck = run_dir / "checkpoints" / f"step-{last_ck}"
        assert ck.is_dir(), f"the complete step-{last_ck} checkpoint is gone: {sorted(os.listdir(run_dir))}"
        empty = sorted(p.name for p in ck.rglob("*") if p.is_file() and p.stat().st_size == 0)
        assert not empty, f"step-{last_ck} lost its files' contents in the power cut: {empty}"
        assert (run_dir / "recipe.qlora.yaml").read_bytes() == recipe.read_bytes()
        on_disk = _events(run_dir / "events.jsonl")
        assert on_disk == live[:len(on_disk)], "the event log on disk is not a prefix of the one written"
        assert any(e["type"] == "checkpoint" and e["data"]["step"] == last_ck for e in on_disk)

        res = cli("run", str(recipe), "--output-dir", str(after.where / "runs"), "--run-id", "p", "--resume")
        assert res.returncode == 0, res.stderr[-3000:]
        events = _events(run_dir / "events.jsonl")
        assert any(e["type"] == "log" and f"resumed from step-{last_ck}" in e["data"]["message"] for e in events)
        resumed = {s: v for s, v in _metrics(events).items() if s > last_ck}
        assert sorted(resumed) == list(range(lost_step, _MAX_STEPS + 1))
        assert lost_loss is None or resumed[lost_step] == lost_loss  # the lost step, trained again, bit for bit
        assert events[-1]["type"] == "status" and events[-1]["data"]["state"] == "completed"
        assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for d in reversed(disks):
            d.close()
