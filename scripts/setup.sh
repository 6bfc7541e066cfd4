#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need, inside the checkout only: node_modules and a
# Python venv in .venv. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

stamp() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# npm packages: keyed on the lock file, so editing scripts in package.json does not reinstall.
NPM_STAMP=$(stamp package-lock.json)
if [ ! -f node_modules/.qlora-stamp ] || [ "$(cat node_modules/.qlora-stamp)" != "$NPM_STAMP" ]; then
  echo "[setup] npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$NPM_STAMP" > node_modules/.qlora-stamp
fi

# Python venv: torch first (the CPU build on local disk), or pip would fetch a multi-GB CUDA build.
PY=${PYTHON:-python3}
PY_STAMP=$(stamp python-backend/pyproject.toml)
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.qlora-stamp ] || [ "$(cat .venv/.qlora-stamp)" != "$PY_STAMP" ]; then
  echo "[setup] python venv in .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${QLORA_TORCH_VERSION:-2.13.0}"
  fi
  .venv/bin/python -m pip install -q -e "python-backend[dev]"
  echo "$PY_STAMP" > .venv/.qlora-stamp
fi
echo "[setup] ready: $("$ROOT/.venv/bin/python" -c 'import torch, transformers, peft, bitsandbytes as b; print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, bitsandbytes {b.__version__}")')"
