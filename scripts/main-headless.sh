#!/usr/bin/env bash
# The main job, headless, on the embedded tiny example (CPU is enough, about a minute):
# build the example if missing, train it, show the loss falling, compare base vs base+adapter on
# held-out questions, merge the adapter and print the merge verification figure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "error: no Python venv in .venv; run 'npm run setup' first" >&2
  exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
RECIPE=examples/tiny/tiny.qlora.yaml

echo "== 1. tiny example (model + data, built locally, nothing downloaded)"
"$PY" examples/tiny/make_tiny.py

echo "== 2. train: qlora-studio run $RECIPE"
RUN_DIR=$("$PY" -m qlora_studio.cli run "$RECIPE" | tail -n 1)
echo "run directory: $RUN_DIR"

echo "== 3. loss"
"$PY" - "$RUN_DIR" <<'PYEOF'
import sys
from qlora_studio.events import read_events
events = list(read_events(f"{sys.argv[1]}/events.jsonl"))
m = [e["data"] for e in events if e["type"] == "metrics"]
ev = [e["data"] for e in events if e["type"] == "eval"]
print(f"train loss: step {m[0]['step']} {m[0]['loss']:.4f} -> step {m[-1]['step']} {m[-1]['loss']:.4f} "
      f"({m[-1]['loss'] / m[0]['loss']:.1%} of the first)")
if ev:
    print("eval loss:  " + ", ".join(f"step {e['step']} {e['eval_loss']:.4f}" for e in ev))
PYEOF

echo "== 4. generate: base vs base+adapter on held-out questions (greedy)"
"$PY" - "$RUN_DIR" <<'PYEOF'
import json, logging, sys, warnings
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")
from transformers.utils import logging as hf_logging
hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
from qlora_studio.generate import load_for_generation, stream_generate
rows = [json.loads(l) for l in open("examples/tiny/data/eval.jsonl")][:10]
base = load_for_generation("examples/tiny/model")
tuned = load_for_generation("examples/tiny/model", f"{sys.argv[1]}/adapter")
def ask(lm, row):
    return "".join(stream_generate(base_model=lm.base_model, adapter=lm.adapter, messages=row["messages"][:1],
                                   loaded=lm, max_new_tokens=8, temperature=0)).strip()
score = {"base": 0, "adapter": 0}
for row in rows:
    q, want = row["messages"][0]["content"], row["messages"][1]["content"]
    b, t = ask(base, row), ask(tuned, row)
    score["base"] += b == want; score["adapter"] += t == want
    print(f"  {q!r:48} expected {want!r:12} base {b[:20]!r:24} adapter {t!r}")
print(f"exact match on {len(rows)} held-out questions: base {score['base']}/{len(rows)}, "
      f"base+adapter {score['adapter']}/{len(rows)}")
PYEOF

echo "== 5. merge: qlora-studio merge $RUN_DIR/adapter --out $RUN_DIR/merged"
"$PY" -m qlora_studio.cli merge "$RUN_DIR/adapter" --out "$RUN_DIR/merged" --dtype bfloat16
ls -1 "$RUN_DIR/merged"
