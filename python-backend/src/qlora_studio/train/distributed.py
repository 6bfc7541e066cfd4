"""Data-parallel training on several GPUs of one host, on torch.distributed.

`qlora-studio run --gpus N` (or `distributed.gpus: N` in the recipe) relaunches the CLI through
`torch.distributed.run` with one process per GPU; each process finds its rank in the environment
that launcher sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

Every process holds the whole 4-bit base and its own copy of the adapters. An optimizer step
takes micro_batch_size x grad_accum x world rows: each rank trains its own grad_accum
micro-batches, the summed token losses are divided by the trained-token count of the whole step
(summed over ranks), and the adapters' gradients are summed across ranks in one flat all-reduce
before clipping. So N processes at grad_accum G take exactly the step one process takes at
grad_accum N x G. Only rank 0 writes events, run.json, checkpoints and the adapter.

Without CUDA the processes run on the CPU with the gloo backend (used by the tests).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

# Environment of a rank, set by torch.distributed.run.
_RANK_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# NVLink multicast stays off: a program using it can take a shared host's GPUs out of service.
_SAFE_NCCL_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


class DistributedSetupError(ValueError):
    """The requested process count or strategy cannot run on this machine; the message says what to do."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the group (a single process is rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes events, checkpoints and the adapter."""
        return self.rank == 0


def launched_rank() -> Dist:
    """The rank this process was started as (rank 0 of 1 when no launcher set the environment)."""
    if not all(k in os.environ for k in _RANK_ENV):
        return Dist()
    return Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))


def init_group(dist: Dist) -> None:
    """Join the process group: NCCL on CUDA (one GPU per local rank), gloo on the CPU."""
    if not dist.enabled:
        return
    import torch
    import torch.distributed as td

    if td.is_initialized():
        return
    if torch.cuda.is_available():
        if torch.cuda.device_count() <= dist.local_rank:
            raise DistributedSetupError(f"local rank {dist.local_rank} has no GPU: this machine has "
                                        f"{torch.cuda.device_count()}; lower distributed.gpus (or --gpus)")
        torch.cuda.set_device(dist.local_rank)
        td.init_process_group("nccl", device_id=torch.device("cuda", dist.local_rank))
    else:
        td.init_process_group("gloo")


def close_group(dist: Dist) -> None:
    """Leave the process group (no-op for a single process)."""
    if not dist.enabled:
        return
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def barrier(dist: Dist) -> None:
    """Wait until every rank is here (no-op for a single process)."""
    if dist.enabled:
        import torch.distributed as td

        td.barrier()


def broadcast_object(dist: Dist, value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not dist.enabled:
        return value
    import torch.distributed as td

    box = [value]
    td.broadcast_object_list(box, src=0)
    return box[0]


def sum_scalars(dist: Dist, values: Sequence[float], device: Any) -> list[float]:
    """Element-wise sum of a few numbers over all ranks (fp64, one all-reduce)."""
    if not dist.enabled:
        return [float(v) for v in values]
    import torch
    import torch.distributed as td

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    td.all_reduce(t)
    return [float(v) for v in t.tolist()]


def sum_gradients(dist: Dist, params: Sequence[Any]) -> None:
    """Sum the gradients of `params` over all ranks, in one flat all-reduce per dtype.

    A parameter without a gradient on this rank contributes zeros, so every rank reduces the same
    buffer. The adapters are small next to the base, so one reduction after the last backward
    costs little against the step.
    """
    if not dist.enabled:
        return
    import torch
    import torch.distributed as td

    by_dtype: dict[Any, list[Any]] = {}
    for p in params:
        by_dtype.setdefault(p.dtype, []).append(p)
    for group in by_dtype.values():
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
        flat = torch.cat([g.reshape(-1) for g in grads])
        td.all_reduce(flat)
        offset = 0
        for p in group:
            n = p.numel()
            summed = flat[offset:offset + n].view_as(p)
            if p.grad is None:
                p.grad = summed.clone()
            else:
                p.grad.copy_(summed)
            offset += n


def requested_processes(gpus_flag: int | None, recipe_path: str) -> tuple[int, str]:
    """(processes, strategy) from --gpus, else the recipe's `distributed` section, else (1, "ddp")."""
    strategy = "ddp"
    gpus = gpus_flag
    try:
        from ..recipe import load_recipe

        section = load_recipe(recipe_path).distributed
    except Exception:  # a broken recipe is reported by the run itself, as a single process
        section = None
    if section is not None:
        strategy = str(section.strategy)
        if gpus is None:
            gpus = int(section.gpus)
    return max(1, int(gpus or 1)), strategy


def check_processes(n: int) -> None:
    """Fail with a fix when more GPU processes are asked for than this machine has GPUs."""
    import torch

    if torch.cuda.is_available() and n > torch.cuda.device_count():
        raise DistributedSetupError(f"{n} GPUs requested but this machine has {torch.cuda.device_count()}; "
                                    "lower distributed.gpus in the recipe (or --gpus)")


def launch_command(n: int, cli_args: Sequence[str]) -> list[str]:
    """The torch.distributed.run command line that runs `qlora-studio <cli_args>` as n ranks."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(n), "-m", "qlora_studio.cli", *cli_args]


# Where rank 0 writes its own exit code for the launcher (set by `launch`, read back by it).
RANK0_EXIT_ENV = "QLORA_STUDIO_RANK0_EXIT_FILE"


def launch(n: int, cli_args: Sequence[str]) -> int:
    """Run the CLI as n ranks and return the exit code of the run.

    The launcher itself only says "a rank failed" (1); rank 0 writes its own code (130 stopped, 4
    out of memory, ...) to a file named in the environment, and that code is returned when the
    launcher failed and rank 0 did not end with 0. Otherwise the launcher's code. SIGINT and
    SIGTERM sent to this process (a stop from the server signals it alone) are passed on to the
    launcher, which passes them to every rank: they checkpoint at the next step and stop.
    """
    import signal
    import tempfile
    import threading

    env = dict(os.environ)
    env.update(_SAFE_NCCL_ENV)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
    fd, exit_file = tempfile.mkstemp(prefix="qlora-rank0-exit-")
    os.close(fd)
    env[RANK0_EXIT_ENV] = exit_file
    old: dict[int, Any] = {}
    try:
        proc = subprocess.Popen(launch_command(n, cli_args), env=env)

        def forward(signum: int, _frame: Any) -> None:
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, forward)
        rc = proc.wait()
        text = Path(exit_file).read_text().strip()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        Path(exit_file).unlink(missing_ok=True)
    if rc != 0 and text.lstrip("-").isdigit() and int(text) != 0:
        return int(text)
    return rc


def report_rank0_exit(code: int) -> None:
    """In a launched rank 0: leave the exit code where `launch` reads it."""
    path, rank = os.environ.get(RANK0_EXIT_ENV), launched_rank()
    if path and rank.enabled and rank.rank == 0:
        try:
            Path(path).write_text(f"{code}\n")
        except OSError:
            pass  # the launcher then reports its own code
