"""Shared fixtures: the tiny example built once per session, a trained run, engine subprocesses.

Everything runs on the CPU with the real bitsandbytes NF4 kernels; nothing is downloaded.
Children get OMP_NUM_THREADS=1 so runs are deterministic and the shared machine stays usable.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_SRC = REPO / "examples" / "tiny"


def _load_make_tiny() -> Any:
    spec = importlib.util.spec_from_file_location("make_tiny", TINY_SRC / "make_tiny.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def small_lora_llama(offload: bool, dropout: float, keep: int = 0) -> Any:
    """A 3-layer random Llama with LoRA on q, v and down (non-zero B), in training mode; with
    `offload` its layers use offloaded checkpointing, the first `keep` of them kept out of it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from qlora_studio.train.offload import keep_layers, offload_checkpointing

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=97, attn_implementation="sdpa")
    base = LlamaForCausalLM(cfg)
    for p in base.parameters():
        p.requires_grad_(False)
    if offload:
        assert offload_checkpointing(base) == 3
        assert keep_layers(base, keep) == keep
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                            target_modules=["q_proj", "v_proj", "down_proj"]))
    for n, p in model.named_parameters():  # non-zero B, so every LoRA weight gets a gradient
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    return model.train()


def lora_loss_and_grads(model: Any, ids: Any) -> tuple[Any, dict[str, Any]]:
    """One forward + backward with fixed dropout masks: the loss and every trainable gradient."""
    import torch

    torch.manual_seed(123)  # the dropout masks of the forward
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def engine_env(**extra: str) -> dict[str, str]:
    """Environment for engine subprocesses: one thread, unbuffered, quiet libraries."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               TRANSFORMERS_VERBOSITY="error")
    env.update(extra)
    return env


def cli(*args: str, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run `python -m qlora_studio.cli ARGS` to completion and return the result (text)."""
    return subprocess.run([sys.executable, "-m", "qlora_studio.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=engine_env(), **kw)


def cli_popen(*args: str, **kw: Any) -> subprocess.Popen[str]:
    """Start `python -m qlora_studio.cli ARGS` without waiting."""
    return subprocess.Popen([sys.executable, "-m", "qlora_studio.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=engine_env(), **kw)


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete event of a run."""
    from qlora_studio.events import read_events as _read

    return list(_read(run_dir / "events.jsonl"))


def write_recipe_variant(tiny: Path, name: str, changes: dict[str, Any]) -> Path:
    """Copy tiny.qlora.yaml to NAME.qlora.yaml (same folder, so ./model resolves) with nested changes."""
    doc = yaml.safe_load((tiny / "tiny.qlora.yaml").read_text())
    doc = copy.deepcopy(doc)
    for dotted, value in changes.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    path = tiny / f"{name}.qlora.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def make_tiny_module() -> Any:
    """examples/tiny/make_tiny.py as a module."""
    return _load_make_tiny()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, make_tiny_module: Any) -> Path:
    """A folder holding model/, data/ and tiny.qlora.yaml of the tiny example, built once."""
    d = tmp_path_factory.mktemp("tiny")
    assert make_tiny_module.main(["--out", str(d)]) == 0
    shutil.copyfile(TINY_SRC / "tiny.qlora.yaml", d / "tiny.qlora.yaml")
    return d


@pytest.fixture(scope="session")
def trained_run(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny recipe trained to the end through the CLI: {run_dir, stdout, stderr, returncode}."""
    runs = tmp_path_factory.mktemp("runs")
    res = cli("run", str(tiny_dir / "tiny.qlora.yaml"), "--output-dir", str(runs), "--run-id", "main")
    assert res.returncode == 0, res.stderr[-3000:]
    return {"run_dir": runs / "main", "stdout": res.stdout, "stderr": res.stderr, "runs": runs}


@pytest.fixture(scope="session")
def eval_rows(tiny_dir: Path) -> list[dict[str, Any]]:
    """The tiny example's eval conversations."""
    return [json.loads(line) for line in (tiny_dir / "data" / "eval.jsonl").read_text().splitlines()]
