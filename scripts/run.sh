#!/usr/bin/env bash
# Runs reel on the embedded default (SQLite + local files under ./data) on a fresh
# Debian/Ubuntu machine with Rust. Extra arguments go to `reel serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

say "media tools"
ensure_ffmpeg
# --- web app (web/dist, served by reel at /) ---
say "web app"
command -v npm >/dev/null || die "the web app needs Node.js 20 and npm (Debian's nodejs is too old: use NodeSource or nvm)"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || die "the web app needs Node.js >= 20, found $(node --version)"
(cd web && npm ci --no-audit --no-fund && npm run build)
# --- end web app ---

say "building and starting reel"
exec cargo run --release --locked -- serve "$@"
