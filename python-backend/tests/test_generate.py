"""Generation: streaming, greedy answers of the trained adapter vs the base, stop_event, introspection."""
from __future__ import annotations

import threading

import pytest

from qlora_studio.generate import introspect_model, load_for_generation, stream_generate


@pytest.fixture(scope="module")
def models(trained_run, tiny_dir):
    base = str(tiny_dir / "model")
    return {"base": load_for_generation(base), "tuned": load_for_generation(base, str(trained_run["run_dir"] / "adapter"))}


def _answer(lm, messages) -> str:
    return "".join(stream_generate(base_model=lm.base_model, adapter=lm.adapter, messages=messages, loaded=lm,
                                   max_new_tokens=8, temperature=0)).strip()


def test_adapter_beats_base_on_held_out_questions(models, eval_rows):
    rows = eval_rows[:12]
    tuned = sum(_answer(models["tuned"], r["messages"][:1]) == r["messages"][1]["content"] for r in rows)
    base = sum(_answer(models["base"], r["messages"][:1]) == r["messages"][1]["content"] for r in rows)
    assert tuned >= 9, tuned  # phrasings never seen in training
    assert tuned > base


def test_streams_several_pieces(models):
    import torch

    torch.manual_seed(0)  # sampling from the untrained base: without a seed it may stop at once now and then
    pieces = list(stream_generate(base_model=models["base"].base_model, prompt="capital of", loaded=models["base"],
                                  max_new_tokens=12, temperature=0.8, top_p=0.95, top_k=20, repetition_penalty=1.1))
    assert len(pieces) > 1 and all(isinstance(p, str) and p for p in pieces)


def test_stop_event_ends_generation(models):
    stop = threading.Event()
    pieces = []
    for piece in stream_generate(base_model=models["base"].base_model, prompt="capital of", loaded=models["base"],
                                 max_new_tokens=200, temperature=0, stop_event=stop):
        pieces.append(piece)
        stop.set()
    assert 1 <= len(pieces) < 10


def test_generate_loads_by_itself_and_bad_adapter_is_clear(trained_run, tiny_dir, eval_rows):
    row = eval_rows[0]
    out = "".join(stream_generate(base_model=str(tiny_dir / "model"), adapter=str(trained_run["run_dir"] / "adapter"),
                                  messages=row["messages"][:1], max_new_tokens=8, temperature=0))
    assert out.strip() == row["messages"][1]["content"]
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        list(stream_generate(base_model=str(tiny_dir / "model"), adapter=str(tiny_dir), prompt="x", max_new_tokens=2))


def test_introspect_model(tiny_dir):
    info = introspect_model(str(tiny_dir / "model"))
    assert info["config"]["hidden_size"] == 256 and info["config"]["num_hidden_layers"] == 4
    assert info["lora_targets"] == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert "lm_head" in info["linear_modules"]
    assert 2_000_000 < info["num_parameters"] < 5_000_000


def test_two_first_requests_at_once_in_a_fresh_process(trained_run, tiny_dir):
    # The server answers two generate requests (base and base+adapter) on two threads; in a fresh
    # interpreter both threads import transformers' lazy names for the first time at once.
    import subprocess
    import sys

    from conftest import engine_env

    code = (
        "import sys, threading\n"
        "from qlora_studio.generate import stream_generate\n"
        "base, adapter = sys.argv[1], sys.argv[2]\n"
        "out, errs = {}, []\n"
        "def go(name, ad):\n"
        "    try:\n"
        "        out[name] = ''.join(stream_generate(base_model=base, adapter=ad, prompt='capital of', max_new_tokens=4, temperature=0))\n"
        "    except BaseException as e:\n"
        "        errs.append(repr(e))\n"
        "ts = [threading.Thread(target=go, args=('base', None)), threading.Thread(target=go, args=('tuned', adapter))]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(sorted(out), errs)\n"
        "sys.exit(1 if errs or len(out) != 2 else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(tiny_dir / "model"), str(trained_run["run_dir"] / "adapter")],
                         capture_output=True, text=True, timeout=300, env=engine_env())
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
