#!/usr/bin/env bash
# Python tier: pytest on the CPU with real bitsandbytes NF4.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest python-backend/tests -q "$@"
