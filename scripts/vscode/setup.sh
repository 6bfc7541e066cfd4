#!/usr/bin/env bash
# Installs what the real-VS-Code test tiers and `npm start` need, on a fresh Debian machine as root:
# Debian's chromium / ripgrep / libkrb5-dev, and code-server (pinned) inside the checkout under
# .tools/code-server. Idempotent: a second run only checks and returns.
# Why the workarounds: see /work/shared/facts/vscode-e2e.md (code-server 4.100.3 is the last one
# that runs on Node 20; its ripgrep and node-pty postinstalls reach GitHub / prompt otherwise).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CODE_SERVER_VERSION=${QLORA_CODE_SERVER_VERSION:-4.100.3}
RIPGREP_PKG_VERSION=1.15.11
RIPGREP_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
TOOLS=$ROOT/.tools
CS_DIR=$TOOLS/code-server
CS_BIN=$CS_DIR/node_modules/.bin/code-server
START=$(date +%s)

log() { echo "[vscode-setup] $*"; }

# 1. Debian packages, only when one is missing (apt-get update is the slow part).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "[vscode-setup] error: missing Debian packages: ${missing[*]}. Run this script as root, or install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. code-server, pinned, inside the checkout.
installed_version() {
  node -p "require('$CS_DIR/node_modules/code-server/package.json').version" 2>/dev/null || true
}
if [ -x "$CS_BIN" ] && [ "$(installed_version)" = "$CODE_SERVER_VERSION" ] && [ -f "$CS_DIR/.installed" ]; then
  log "code-server $CODE_SERVER_VERSION already installed in .tools/code-server"
else
  log "installing code-server@$CODE_SERVER_VERSION into .tools/code-server"
  mkdir -p "$CS_DIR" "$TOOLS/tmp" "$TOOLS/npm-cache"
  # A private temp dir and npm cache keep every download cache inside the checkout.
  export TMPDIR=$TOOLS/tmp
  export npm_config_cache=$TOOLS/npm-cache
  # @vscode/ripgrep's postinstall would fetch rg from GitHub: hand it Debian's binary instead,
  # packed the way its download cache expects.
  rg_cache="$(TMPDIR=$TMPDIR node -p 'require("os").tmpdir()')/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
  if [ ! -s "$rg_cache/$RIPGREP_ASSET" ]; then
    mkdir -p "$rg_cache" "$TOOLS/tmp/rg-stage"
    cp "$(command -v rg)" "$TOOLS/tmp/rg-stage/rg"
    tar -czf "$rg_cache/$RIPGREP_ASSET" -C "$TOOLS/tmp/rg-stage" rg
  fi
  # A package.json of its own stops npm from walking up into the repository's package.json.
  [ -f "$CS_DIR/package.json" ] || echo '{"name":"qlora-studio-tools","private":true}' > "$CS_DIR/package.json"
  rm -f "$CS_DIR/.installed"
  # node-pty's postinstall runs `npx node-gyp`, which would wait on a prompt where yes=false.
  npm_config_yes=true npm install --prefix "$CS_DIR" --no-audit --no-fund --loglevel=error \
    --unsafe-perm --no-save "code-server@$CODE_SERVER_VERSION"
  if ! "$CS_BIN" --version >/dev/null 2>&1; then
    echo "[vscode-setup] error: code-server installed but does not start; see the npm output above. Remove .tools/code-server and run again." >&2
    exit 1
  fi
  touch "$CS_DIR/.installed"
fi
# Whole outputs are captured before taking a line: `| head -1` makes the writers fail on EPIPE.
cs_version=$("$CS_BIN" --version 2>/dev/null || true)
rg_version=$(rg --version)
log "ready in $(( $(date +%s) - START ))s: ${cs_version%%$'\n'*}, $(chromium --version 2>/dev/null), ${rg_version%%$'\n'*}"
