#!/usr/bin/env bash
# `npm test`: set up, then run every test tier. Stops at the first failing tier.
#   1 TypeScript unit tests (no vscode)         4 extension inside real VS Code (code-server + Chromium)
#   2 Python tests (real bitsandbytes NF4, CPU)  5 UI end-to-end (Playwright)
#     (tier 2 includes the fuzz tests, python-backend/tests/test_fuzz.py: hostile recipes, rows, frames)
#   3 TypeScript client against the real Python server
#   3b SSH backend through a private loopback sshd
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
started=$(date +%s)
tier() { echo; echo "== $1 ($(( $(date +%s) - started )) s)"; }

tier "set-up"; bash scripts/setup.sh; bash scripts/vscode/setup.sh
tier "generated files are fresh"
npm run -s gen:schemas -- --check
npx tsx scripts/genRecipeDoc.ts --check
npx tsx scripts/genRecipeFixtures.ts --check
.venv/bin/python scripts/gen_masking_vectors.py --check
.venv/bin/python scripts/gen_render_vectors.py --check
.venv/bin/python scripts/gen_tokenizer_vectors.py --check
.venv/bin/python scripts/gen_estimate_vectors.py --check
.venv/bin/python scripts/gen_recipe_types.py --check
tier "typecheck"; npm run -s typecheck
tier "TypeScript unit tests"; npm run -s test:unit
tier "Python tests"; npm run -s test:py
tier "backend client tests (TypeScript client against the real Python server)"; npm run -s test:backend
tier "SSH backend (private sshd on loopback, real OpenSSH)"; npm run -s test:ssh
tier "extension inside real VS Code"; npm run -s test:integration
tier "UI end-to-end"; npm run -s test:e2e
tier "all tiers passed in $(( $(date +%s) - started )) s"
