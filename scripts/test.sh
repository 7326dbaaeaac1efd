#!/usr/bin/env bash
# Runs reel's whole test suite on a fresh Debian/Ubuntu machine with Rust.
#
# Provisions what the suite needs and tears it down afterwards:
#   - ffmpeg/ffprobe (apt-get when missing and running as root),
#   - a throwaway PostgreSQL cluster on a free port (or REEL_TEST_DATABASE_URL when set),
#   - an S3-compatible server (s3s-fs, installed with cargo when missing) on a free port,
#   - a NATS JetStream server (nats-server -js, apt package when missing) on a free port, or
#     REEL_TEST_NATS_URL when set; the outage test starts its own from REEL_TEST_NATS_SERVER,
#   - python3-venv for the pinned API contract tools (scripts/contract/),
#   - nginx, psql and jq for the multi-process cluster test (scripts/cluster-test.sh).
# A backend that cannot be provisioned fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/reel-test.XXXXXX)
chmod 755 "$work"
pids=()
pg_stop=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ ${#pg_stop[@]} -gt 0 ]; then "${pg_stop[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

say "media tools"
ensure_ffmpeg

say "PostgreSQL"
if [ -n "${REEL_TEST_DATABASE_URL:-}" ]; then
  echo "using REEL_TEST_DATABASE_URL"
else
  start_postgres "$work/pg" 55432
  pg_stop=("${PG_STOP[@]}")
  export REEL_TEST_DATABASE_URL=$PG_URL
  echo "throwaway cluster at $PG_URL"
fi

say "S3-compatible server"
export S3_ACCESS_KEY=reel-test-key S3_SECRET_KEY=reel-test-secret
start_s3 "$work/s3" 9014 "$work/s3.log"
pids+=("$S3_PID")
export REEL_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY REEL_TEST_S3_SECRET_KEY=$S3_SECRET_KEY REEL_TEST_S3_ENDPOINT=$S3_ENDPOINT
echo "s3s-fs at $S3_ENDPOINT"

say "NATS JetStream"
export REEL_TEST_NATS_SERVER="${REEL_TEST_NATS_SERVER:-$(ensure_nats_server)}"
if [ -n "${REEL_TEST_NATS_URL:-}" ]; then
  echo "using REEL_TEST_NATS_URL"
else
  nats_port=$(free_port 14222)
  mkdir -p "$work/nats"
  "$REEL_TEST_NATS_SERVER" -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats" >"$work/nats.log" 2>&1 &
  pids+=($!)
  wait_for_port "$nats_port" nats-server
  export REEL_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
  echo "nats-server -js on port $nats_port"
fi

say "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

say "tests"
cargo test --locked --lib --bins --tests "$@"

say "API contract (OpenAPI 3.1 document, schemathesis: creator, admin, no token)"
cargo build --locked --bin reel
scripts/contract/run.sh "$work" "${CARGO_TARGET_DIR:-target}/debug/reel"

say "multi-process cluster (PostgreSQL, s3s-fs, 2 serve, 2 workers, nginx tier; processes killed under load)"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
command -v psql >/dev/null || apt_install postgresql-client
command -v jq >/dev/null || apt_install jq
scripts/cluster-test.sh "$work" "${CARGO_TARGET_DIR:-target}/debug/reel"

say "web app build"
build_web
say "web end-to-end tests (headless Chromium)"
(cd web && npm test)
