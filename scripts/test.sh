#!/usr/bin/env bash
# `npm test`: set up, then run every test tier that exists. Stops at the first failing tier.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
bash scripts/setup.sh
echo "== schemas are fresh"; npm run -s gen:schemas -- --check
echo "== typecheck"; npm run -s typecheck
echo "== TypeScript unit tests"; npm run -s test:unit
echo "== Python tests"; npm run -s test:py
