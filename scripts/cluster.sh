#!/usr/bin/env bash
# reel's production layout on one machine: PostgreSQL, an S3-compatible server (s3s-fs),
# 2 × `reel serve --no-workers`, 2 × `reel worker`, and nginx in front as the caching tier
# (deploy/nginx/reel.conf). See README "Production layout".
#
#   ./scripts/cluster.sh start     # builds reel (release), starts everything, prints the URLs
#   ./scripts/cluster.sh stop      # stops everything it started and removes its state
#   ./scripts/cluster.sh env       # prints the cluster's variables (URL, token, pids, ports)
#   ./scripts/cluster.sh respawn serve-1   # starts a stopped reel process again (serve-N, worker-N)
#
# Environment (defaults in brackets):
#   CLUSTER_DIR [/tmp/reel-cluster]  state: data dirs, logs, pids, rendered nginx.conf
#   CLUSTER_PORT [8080]              first port tried for nginx; the others follow it (free ones)
#   REEL_BIN                         a reel binary to run instead of building the release one
#   CLUSTER_DIRECT_UPLOADS [true]    presigned part URLs straight to the bucket, else parts go
#                                    through nginx and `reel serve`
# PostgreSQL and s3s-fs are provisioned like the test command's (scripts/lib.sh). Every extra
# REEL_* variable in the environment reaches every reel process.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

dir=${CLUSTER_DIR:-/tmp/reel-cluster}
state=$dir/cluster.env

# Records NAME=VALUE in the state file, a shell fragment that `stop` and the cluster test source.
record() { printf '%s=%q\n' "$1" "$2" >>"$state"; }

# Starts `env ARGS…` in the background, detached from this shell: launch NAME ARGS…
launch() {
  local name=$1
  shift
  setsid env "$@" >>"$dir/$name.log" 2>&1 </dev/null &
  record "PID_${name//-/_}" $!
}

# Launches a reel process and records its command for `respawn`: start_reel NAME [VAR=VALUE…] REEL ARGS…
start_reel() {
  local name=$1
  shift
  printf 'CMD_%s=(%s)\n' "${name//-/_}" "$(printf '%q ' "$@")" >>"$state"
  launch "$name" "$@"
}

start() {
  [ ! -e "$state" ] || die "a cluster is already running from $dir (./scripts/cluster.sh stop)"
  mkdir -p "$dir"
  chmod 755 "$dir"
  : >"$state"
  trap 'echo "start failed: stopping what started (logs were in $dir)" >&2; stop' EXIT

  say "tools"
  ensure_ffmpeg
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  if [ -n "${REEL_BIN:-}" ]; then
    reel=$(realpath "$REEL_BIN")
  else
    cargo build --release --locked --bin reel
    reel=$(realpath "${CARGO_TARGET_DIR:-target}/release/reel")
  fi
  record REEL_BIN "$reel"

  say "PostgreSQL"
  start_postgres "$dir/pg" 55432
  printf 'PG_STOP=(%s)\n' "$(printf '%q ' "${PG_STOP[@]}")" >>"$state"
  record DATABASE_URL "$PG_URL"
  echo "$PG_URL"

  say "S3-compatible server"
  export S3_ACCESS_KEY=reel-cluster-key S3_SECRET_KEY=reel-cluster-secret
  start_s3 "$dir/s3" 9100 "$dir/s3.log"
  record PID_s3 "$S3_PID"
  mkdir -p "$dir/s3/reel" # s3s-fs: a directory under its root is a bucket
  record S3_ENDPOINT "$S3_ENDPOINT"
  echo "$S3_ENDPOINT, bucket reel"

  local nginx_port serve_1 serve_2
  nginx_port=$(free_port "${CLUSTER_PORT:-8080}")
  serve_1=$(free_port $((nginx_port + 1)))
  serve_2=$(free_port $((serve_1 + 1)))
  local url=http://127.0.0.1:$nginx_port
  export REEL_DATABASE__URL=$PG_URL REEL_DATABASE__MAX_CONNECTIONS=16 \
    REEL_STORAGE__BACKEND=s3 REEL_STORAGE__S3__ENDPOINT=$S3_ENDPOINT REEL_STORAGE__S3__BUCKET=reel \
    REEL_STORAGE__S3__ACCESS_KEY_ID=$S3_ACCESS_KEY REEL_STORAGE__S3__SECRET_ACCESS_KEY=$S3_SECRET_KEY \
    REEL_STORAGE__S3__DIRECT_UPLOADS=${CLUSTER_DIRECT_UPLOADS:-true} \
    REEL_AUTH__JWT_SECRET_FILE=$dir/jwt-secret REEL_SERVER__PUBLIC_URL=$url \
    REEL_SERVER__WEB_DIR=${REEL_SERVER__WEB_DIR:-$PWD/web/dist}
  head -c 32 /dev/urandom | base64 >"$dir/jwt-secret"
  export -p | grep '^declare -x REEL_' >"$dir/reel.env"

  say "reel: migrate, 2 × serve --no-workers, 2 × worker"
  "$reel" migrate >>"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; die "reel migrate failed"; }
  local n
  for n in 1 2; do
    local port_var="serve_$n"
    start_reel "serve-$n" "REEL_SERVER__BIND=127.0.0.1:${!port_var}" "$reel" serve --no-workers
    start_reel "worker-$n" "REEL_PIPELINE__WORK_DIR=$dir/work-$n" "$reel" worker
  done
  wait_for_port "$serve_1" "reel serve 1"
  wait_for_port "$serve_2" "reel serve 2"
  record SERVE_1 "http://127.0.0.1:$serve_1"
  record SERVE_2 "http://127.0.0.1:$serve_2"

  say "nginx (caching tier)"
  sed -e "s|@RUN@|$dir|g" -e "s|@LISTEN@|127.0.0.1:$nginx_port|g" \
    -e "s|@SERVE_1@|127.0.0.1:$serve_1|g" -e "s|@SERVE_2@|127.0.0.1:$serve_2|g" \
    deploy/nginx/reel.conf >"$dir/nginx.conf"
  "$nginx_bin" -t -q -c "$dir/nginx.conf" -g 'daemon off;'
  setsid "$nginx_bin" -c "$dir/nginx.conf" -g 'daemon off;' >>"$dir/nginx.log" 2>&1 </dev/null &
  record PID_nginx $!
  wait_for_port "$nginx_port" nginx
  record URL "$url"
  record TOKEN "$("$reel" token --user cluster)"
  record ADMIN_TOKEN "$("$reel" token --user cluster-admin --admin)"
  trap - EXIT

  say "running"
  echo "reel behind nginx: $url   (origin $url/origin/…, API $url/v1/…)"
  echo "serve: 127.0.0.1:$serve_1 127.0.0.1:$serve_2   workers: 2   logs and state: $dir"
  echo "a token:  $(grep '^TOKEN=' "$state" | cut -d= -f2-)"
  echo "upload:   $reel --server $url --token \$TOKEN upload clip.mp4 --wait"
}

# Stops every recorded process by its pid (TERM, then KILL after 10 s), then PostgreSQL.
stop() {
  [ -e "$state" ] || { echo "no cluster in $dir"; return 0; }
  local PG_STOP=() pids=() var pid
  # shellcheck disable=SC1090
  . "$state"
  for var in $(compgen -v PID_); do pids+=("${!var}"); done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ ${#PG_STOP[@]} -gt 0 ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  echo "stopped"
}

# Starts a recorded reel process again (after it was stopped or killed).
respawn() {
  [ -e "$state" ] || die "no cluster in $dir"
  # shellcheck disable=SC1090,SC1091
  . "$dir/reel.env"
  # shellcheck disable=SC1090
  . "$state"
  local cmd="CMD_${1//-/_}[@]"
  local args=("${!cmd}")
  [ ${#args[@]} -gt 0 ] || die "no process named $1 (serve-1, serve-2, worker-1, worker-2)"
  launch "$1" "${args[@]}"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  env) cat "$state" ;;
  respawn) respawn "${2:-}" ;;
  *) die "usage: $0 start|stop|env|respawn NAME" ;;
esac
