#!/usr/bin/env bash
# Builds the backend wheel that the extension ships and installs on SSH hosts: out/backend/*.whl.
# Built from a temporary copy (setuptools would leave build/ in the source tree) and only when the
# backend's sources changed, so the wheel's bytes, and with them the remote's install stamp, stay
# the same between builds of the same sources.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=out/backend
stamp=$(cd python-backend && find pyproject.toml src -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ] && ls "$dest"/*.whl >/dev/null 2>&1; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp python-backend/pyproject.toml "$tmp/"
cp -r python-backend/src "$tmp/src" && find "$tmp/src" \( -name __pycache__ -o -name "*.egg-info" \) -prune -exec rm -rf {} +
rm -rf "$dest" && mkdir -p "$dest"
SOURCE_DATE_EPOCH=315532800 .venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$dest" "$tmp" 2>&1 | grep -v '^WARNING: Location' >&2 || true
ls "$dest"/*.whl >/dev/null
echo "$stamp" > "$dest/.stamp"
