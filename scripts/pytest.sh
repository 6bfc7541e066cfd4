#!/usr/bin/env bash
# Python tier: pytest on the CPU with real bitsandbytes NF4.
# With no arguments it runs every test under python-backend/tests; given test files or node ids
# (e.g. `bash scripts/pytest.sh python-backend/tests/test_merge.py -k verdict`) it runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
has_target=0
for arg in "$@"; do
  case "$arg" in -*) ;; *) has_target=1 ;; esac
done
if [ "$has_target" = 1 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
exec .venv/bin/python -m pytest python-backend/tests -q "$@"
