"""The CLI surface and the tiny example's generator."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from conftest import cli


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_make_tiny_is_deterministic_and_idempotent(tiny_dir, make_tiny_module, tmp_path):
    t0 = time.perf_counter()
    assert make_tiny_module.main(["--out", str(tmp_path)]) == 0
    assert time.perf_counter() - t0 < 30
    for sub in ("model", "data"):
        assert _hashes(tmp_path / sub) == _hashes(tiny_dir / sub), sub
    stamp = (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns
    assert make_tiny_module.main(["--out", str(tmp_path)]) == 0  # fresh: nothing rewritten
    assert (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    train = (tmp_path / "data" / "train.jsonl").read_text().splitlines()
    evals = (tmp_path / "data" / "eval.jsonl").read_text().splitlines()
    assert len(train) == 300 and len(evals) == 40 and not set(train) & set(evals)


def test_example_recipe_is_valid(tiny_dir):
    res = cli("validate", str(tiny_dir / "tiny.qlora.yaml"))  # the example with its data built
    assert res.returncode == 0, res.stderr
    assert "ok:" in res.stdout


def test_help_documents_exit_codes():
    res = cli("--help")
    assert res.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130"):
        assert f"  {code}" in res.stdout
    for cmd in ("validate", "run", "preview", "generate", "merge", "serve"):
        assert cmd in res.stdout


def test_preview_shows_tokens_and_counts(tiny_dir):
    res = cli("preview", str(tiny_dir / "tiny.qlora.yaml"), "--limit", "2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("tokens,") == 2 and "2 trained" in res.stdout
    assert "<|im_start|>assistant" in res.stdout


def test_generate_streams_the_adapter_answer(trained_run, tiny_dir, eval_rows):
    row = eval_rows[1]
    res = cli("generate", "--base", str(tiny_dir / "model"), "--adapter", str(trained_run["run_dir"] / "adapter"),
              "--prompt", row["messages"][0]["content"], "--temperature", "0", "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == row["messages"][1]["content"]


def test_resume_without_a_run_is_a_usage_error(tiny_dir, tmp_path):
    res = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(tmp_path), "--resume")
    assert res.returncode == 2 and "no resumable run" in res.stderr
