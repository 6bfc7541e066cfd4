#!/usr/bin/env python3
"""Benchmark: the tiny main job on the CPU (train + generate + merge), after set-up.

Each phase runs as its own `qlora-studio` subprocess, as a user would run it; the wall time of
each and the peak RSS of the largest child (resource.getrusage of children) are recorded in
bench/results/tiny-cpu.json and .md. Set-up (building the tiny example) is timed separately and
not counted in wall_s. Target: wall_s < 90 on 2 CPU cores.

Usage: .venv/bin/python bench/tiny_cpu.py [--threads N] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "tiny" / "tiny.qlora.yaml"
WORK = ROOT / "bench" / "work" / "tiny-cpu"
RESULTS = ROOT / "bench" / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    import logging

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)  # optional hub kernel: never wanted
    import bitsandbytes
    import peft
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "bitsandbytes": bitsandbytes.__version__}


def _phase(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-4000:])
        raise SystemExit(f"phase {name} failed with exit code {res.returncode}: {' '.join(cmd)}")
    print(f"{name:9} {dt:7.1f} s", flush=True)
    return dt, res.stdout


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results files."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP_NUM_THREADS of the children")
    ap.add_argument("--keep", action="store_true", help="keep bench/work/tiny-cpu afterwards")
    args = ap.parse_args(argv)
    py = sys.executable
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)

    setup_s, _ = _phase("setup", [py, "examples/tiny/make_tiny.py"], env)
    phases: dict[str, float] = {}
    phases["train"], out = _phase("train", [py, "-m", "qlora_studio.cli", "run", str(RECIPE), "--output-dir",
                                            str(WORK), "--run-id", "bench"], env)
    run_dir = Path(out.strip().splitlines()[-1])
    row = json.loads((ROOT / "examples" / "tiny" / "data" / "eval.jsonl").read_text().splitlines()[0])
    phases["generate"], answer = _phase("generate", [
        py, "-m", "qlora_studio.cli", "generate", "--base", "examples/tiny/model", "--adapter", str(run_dir / "adapter"),
        "--prompt", row["messages"][0]["content"], "--temperature", "0", "--max-new-tokens", "16"], env)
    phases["merge"], merge_out = _phase("merge", [py, "-m", "qlora_studio.cli", "merge", str(run_dir / "adapter"),
                                                  "--out", str(WORK / "merged"), "--dtype", "bfloat16"], env)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    from qlora_studio.events import read_events

    events = list(read_events(run_dir / "events.jsonl"))
    metrics = [e["data"] for e in events if e["type"] == "metrics"]
    evals = [e["data"] for e in events if e["type"] == "eval"]
    result = {
        "benchmark": "tiny-cpu",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": f"{Path(py).name} bench/tiny_cpu.py --threads {args.threads}",
        "wall_s": round(sum(phases.values()), 2),
        "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "setup_s": round(setup_s, 2),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "train": {"steps": metrics[-1]["step"], "first_loss": metrics[0]["loss"], "last_loss": metrics[-1]["loss"],
                  "final_eval_loss": evals[-1]["eval_loss"] if evals else None,
                  "tokens_seen": metrics[-1]["tokens_seen"]},
        "generate_answer": answer.strip(), "generate_expected": row["messages"][1]["content"],
        "merge_verification": merge_out.strip().splitlines()[-1],
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": _versions(),
        "target_wall_s": 90,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tiny-cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "tiny-cpu.md").write_text(_markdown(result))
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps({k: result[k] for k in ("wall_s", "phases_s", "peak_rss_mb")}))
    return 0


def _markdown(r: dict) -> str:
    t = r["train"]
    lines = [
        "# tiny-cpu", "",
        f"{r['date']} on {r['machine']['cpu']} ({r['machine']['cores']} cores, {r['machine']['threads']} threads; "
        f"load average at the end {r['machine']['load_avg_at_end']}).", "",
        f"Command: `{r['command']}`", "",
        "| phase | seconds |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in r["phases_s"].items()],
        f"| **total (wall_s)** | **{r['wall_s']}** (target < {r['target_wall_s']}) |", "",
        f"Set-up (make_tiny.py, not counted): {r['setup_s']} s. Peak RSS of a child: {r['peak_rss_mb']} MB.", "",
        f"Training: {t['steps']} steps, loss {t['first_loss']:.4f} -> {t['last_loss']:.4f}, "
        f"final eval loss {t['final_eval_loss']}, {t['tokens_seen']} tokens.", "",
        f"Generate (held-out question): `{r['generate_answer']}` (expected `{r['generate_expected']}`).", "",
        f"Merge: {r['merge_verification']}", "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()), "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
