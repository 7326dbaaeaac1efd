#!/usr/bin/env bash
# Runs reel on the embedded default (SQLite + local files under ./data) on a fresh
# Debian/Ubuntu machine with Rust. Extra arguments go to `reel serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

say "media tools"
ensure_ffmpeg
say "web app (served by reel at /)"
build_web

say "building and starting reel"
exec cargo run --release --locked -- serve "$@"
