#!/usr/bin/env bash
# `npm start`: sets everything up on a fresh
# Debian machine (venv + npm through scripts/setup.sh, Chromium/code-server through
# scripts/vscode/setup.sh), builds the extension, makes the tiny example if missing, then serves
# VS Code (code-server on 127.0.0.1) with the extension installed and examples/ as the workspace.
# Ctrl-C or SIGTERM stops code-server's whole process group. Env: QLORA_PORT (default: a free
# port), QLORA_WORKSPACE_TRUST=1 to keep Workspace Trust on, QLORA_SKIP_SETUP=1 to skip set-up on a machine
# already set up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${QLORA_SKIP_SETUP:-0}" = 1 ]; then
  echo "[start] QLORA_SKIP_SETUP=1: not running scripts/setup.sh and scripts/vscode/setup.sh"
else
  bash scripts/setup.sh
  bash scripts/vscode/setup.sh
fi
echo "[start] building the extension"
npm run -s build
# make_tiny.py returns at once when a fresh build is there, and rebuilds a stale one.
if [ ! -f examples/tiny/make_tiny.py ]; then
  echo "[start] error: examples/tiny/make_tiny.py is missing; cannot create the tiny example model" >&2
  exit 1
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} .venv/bin/python examples/tiny/make_tiny.py
args=(--workspace examples)
[ -n "${QLORA_PORT:-}" ] && args+=(--port "$QLORA_PORT")
[ "${QLORA_WORKSPACE_TRUST:-0}" = 1 ] && args+=(--trust)
# exec: the launcher receives Ctrl-C itself and stops code-server's process group.
exec node --import tsx scripts/vscode/serve.ts "${args[@]}"
