#!/usr/bin/env bash
# Runs reel's whole test suite on a fresh Debian/Ubuntu machine with Rust.
#
# Provisions what the suite needs and tears it down afterwards:
#   - ffmpeg/ffprobe (apt-get when missing and running as root),
#   - a throwaway PostgreSQL cluster on a free port (or REEL_TEST_DATABASE_URL when set),
#   - an S3-compatible server (s3s-fs, installed with cargo when missing) on a free port,
#   - a NATS JetStream server (nats-server -js, apt package when missing) on a free port, or
#     REEL_TEST_NATS_URL when set; the outage test starts its own from REEL_TEST_NATS_SERVER,
#   - python3-venv for the pinned API contract tools (scripts/contract/).
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
  pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1)" 2>/dev/null || true)
  if [ ! -x "$pg_bin/pg_ctl" ]; then
    apt_install postgresql
    pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
  fi
  pg_port=$(free_port 55432)
  pg_dir="$work/pg"
  mkdir -p "$pg_dir"
  run_pg=()
  if as_root; then
    chown postgres: "$pg_dir"
    run_pg=(runuser -u postgres --)
  fi
  "${run_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  "${run_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o \
    "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null || { cat "$pg_dir/log" >&2; die "PostgreSQL did not start"; }
  pg_stop=("${run_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop)
  export REEL_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  echo "throwaway cluster on port $pg_port"
fi

say "S3-compatible server"
s3s=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
if [ ! -x "$s3s" ]; then
  cargo install --locked s3s-fs --version 0.14.1 --features binary
fi
s3_port=$(free_port 9014)
mkdir -p "$work/s3"
export REEL_TEST_S3_ACCESS_KEY=reel-test-key REEL_TEST_S3_SECRET_KEY=reel-test-secret
"$s3s" --host 127.0.0.1 --port "$s3_port" --access-key "$REEL_TEST_S3_ACCESS_KEY" \
  --secret-key "$REEL_TEST_S3_SECRET_KEY" "$work/s3" >"$work/s3.log" 2>&1 &
pids+=($!)
wait_for_port "$s3_port" s3s-fs
export REEL_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
echo "s3s-fs on port $s3_port"

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

say "web app build"
build_web
say "web end-to-end tests (headless Chromium)"
(cd web && npm test)
