#!/usr/bin/env bash
# Delivery benchmark: the same packaged HLS files served by reel's origin and by nginx (static)
# on loopback, loaded with wrk. Prints a Markdown table of requests/s and p99 latency for both.
#
#   ./bench/delivery.sh                    # as root on Debian/Ubuntu: installs nginx, wrk, ffmpeg
#   BENCH_DURATION=30s BENCH_ROUNDS=5 ./bench/delivery.sh
#   BENCH_MODE=edge ./bench/delivery.sh    # how a CDN edge hits an origin (below)
#   BENCH_BASELINE_BIN=/tmp/reel-main ./bench/delivery.sh   # also loads an older reel build
#
# Modes:
#   pinned (default)  servers on one core, wrk on the other, wrk -t1 -c32, nginx 1 worker.
#   edge              everything unpinned on every core, nginx `worker_processes auto`,
#                     wrk -t2 -c64, plus a twin nginx (a second, identical nginx: the noise
#                     control, it should come within ±10 % of the first) and reel behind the
#                     nginx caching tier of deploy/nginx/reel.conf ("tier").
# Targets: a hot segment, a media playlist, and `If-None-Match` revalidations of that playlist
# answered 304 (each server with its own ETag). Every ratio is against the first nginx.
#
# Steps: build reel (release), start it on a throwaway SQLite DB and object dir, upload a
# generated portrait clip through the HTTP API and wait until it is ready; restart reel as a
# pure HTTP server (`--no-workers`) and start nginx on the same object dir; check that both
# answer each target with the same status, content type and bytes; then, per round and
# target, warm both up and run wrk against each, alternating which server goes first.
#
# Pinning (the default): both servers run on the cores in BENCH_SERVER_CPUS (one at a time, so
# they never compete), wrk runs on BENCH_WRK_CPUS. Set BENCH_SERVER_CPUS= and BENCH_WRK_CPUS=
# (empty) to run everything unpinned. nginx gets one worker process per server core, and reel's
# tokio runtime sizes itself to the same affinity mask, so both use the same number of cores.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [15s]     wrk duration of each measured run
#   BENCH_WARMUP [3s]        wrk duration of the unmeasured warm-up before each measured run
#   BENCH_MODE [pinned]      pinned or edge (the defaults below are pinned's; edge: 64, 2, unpinned, auto)
#   BENCH_CONNECTIONS [32]   wrk connections
#   BENCH_THREADS [1]        wrk threads
#   BENCH_ROUNDS [3]         rounds; the server order alternates from one round to the next
#   BENCH_SERVER_CPUS [0]    taskset CPU list for reel and nginx (empty: unpinned)
#   BENCH_WRK_CPUS [1]       taskset CPU list for wrk (empty: unpinned)
#   BENCH_NGINX_WORKERS      nginx worker_processes [pinned: CPUs in BENCH_SERVER_CPUS; edge: auto]
#   BENCH_BASELINE_BIN       another reel binary ("base"), loaded in the same rounds
#   BENCH_KEEP=1             keep the temp dir (logs, configs, wrk outputs) for inspection
#   BENCH_PROFILE=N          instead of loading: run reel (and BENCH_BASELINE_BIN) under
#                            valgrind --tool=callgrind, send N requests per target on one
#                            keep-alive connection, print instructions per request and the top
#                            frames (inclusive) of each target
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

mode=${BENCH_MODE:-pinned}
case $mode in
  pinned) default_connections=32 default_threads=1 default_server_cpus=0 default_wrk_cpus=1 ;;
  edge) default_connections=64 default_threads=2 default_server_cpus= default_wrk_cpus= ;;
  *) die "BENCH_MODE is pinned or edge" ;;
esac
duration=${BENCH_DURATION:-15s}
warmup=${BENCH_WARMUP:-3s}
connections=${BENCH_CONNECTIONS:-$default_connections}
threads=${BENCH_THREADS:-$default_threads}
rounds=${BENCH_ROUNDS:-3}
server_cpus=${BENCH_SERVER_CPUS-$default_server_cpus}
wrk_cpus=${BENCH_WRK_CPUS-$default_wrk_cpus}
playlist=360p/index.m3u8
# "304" is the playlist asked with If-None-Match and the server's own ETag.
targets=(720p/seg-00002.m4s "$playlist" 304)
servers=(reel nginx)
[ -z "${BENCH_BASELINE_BIN:-}" ] || servers+=(base)
[ "$mode" != edge ] || servers+=(twin tier)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
reel_bin=$CARGO_TARGET_DIR/release/reel

tmp=$(mktemp -d /tmp/reel-bench-delivery.XXXXXX)
chmod 755 "$tmp" # nginx workers run as an unprivileged user and must read the object dir
reel_pid=
nginx_pid=
base_pid=
twin_pid=
tier_pid=
stop() { # stop PID: TERM, then wait for it to exit
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for pid in "$reel_pid" "$nginx_pid" "$base_pid" "$twin_pid" "$tier_pid"; do stop "$pid"; done
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# A taskset CPU list: the given one, or every CPU when it is empty (unpinned).
cpus_or_all() { echo "${1:-0-$(($(nproc) - 1))}"; }
# Number of CPUs in a taskset list such as "0", "0,2" or "0-3".
cpu_count() {
  local n=0 part
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then n=$((n + ${part#*-} - ${part%-*} + 1)); else n=$((n + 1)); fi
  done
  echo "$n"
}

say "tools"
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
ensure_ffmpeg
"$nginx_bin" -v 2>&1
wrk -v 2>&1 | head -1 || true # wrk -v prints its version and exits 1

say "building reel (release)"
cargo build --release --locked
token=$(REEL_AUTH__JWT_SECRET=bench-secret-of-at-least-32-bytes "$reel_bin" token --user bench)
auth=(-H "Authorization: Bearer $token")

# Starts a reel binary on PORT with the throwaway database and object dir and sets
# started_pid; extra args go to serve: start_reel CPUS BIN PORT ARGS…
start_reel() {
  local cpus=$1 bin=$2 port=$3
  shift 3
  taskset -c "$(cpus_or_all "$cpus")" env REEL_DATABASE__URL="sqlite://$tmp/reel.db" \
    REEL_STORAGE__LOCAL_ROOT="$tmp/objects" REEL_AUTH__JWT_SECRET=bench-secret-of-at-least-32-bytes REEL_LOG__FILTER=warn \
    REEL_PIPELINE__WORKERS=1 REEL_PIPELINE__WORK_DIR="$tmp/work" \
    "$bin" serve --bind "127.0.0.1:$port" "$@" >>"$tmp/reel-$port.log" 2>&1 &
  started_pid=$!
  wait_for_port "$port" reel
}

say "ingest: upload a clip and wait until it is ready"
reel_port=$(free_port 18080)
reel=http://127.0.0.1:$reel_port
mkdir -p "$tmp/objects" "$tmp/work"
start_reel "" "$reel_bin" "$reel_port" # unpinned: ingest is not measured, and transcoding is faster on every core
reel_pid=$started_pid
# 720x1280, 10 s, 30 fps with temporal noise so the encoder spends its bitrate like on real
# footage, plus a stereo tone.
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=720x1280:rate=30:duration=10" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=10" \
  -vf "noise=alls=12:allf=t" -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -ac 2 -shortest -movflags +faststart "$tmp/clip.mp4"
size=$(stat -c %s "$tmp/clip.mp4")
session=$(curl -fsS "${auth[@]}" -H 'content-type: application/json' \
  -d "{\"filename\":\"clip.mp4\",\"content_type\":\"video/mp4\",\"size_bytes\":$size}" \
  "$reel/v1/videos/uploads")
upload_id=$(jq -r .upload_id <<<"$session")
part_size=$(jq -r .part_size <<<"$session")
while read -r number url; do
  # Part n is bytes [(n-1)*part_size, n*part_size) of the file.
  dd if="$tmp/clip.mp4" of="$tmp/part" iflag=skip_bytes,count_bytes status=none \
    skip=$(((number - 1) * part_size)) count="$part_size"
  curl -fsS -o /dev/null "${auth[@]}" -T "$tmp/part" "$url"
done < <(jq -r '.parts[] | "\(.part_number) \(.url)"' <<<"$session")
video_id=$(curl -fsS "${auth[@]}" -X POST "$reel/v1/videos/uploads/$upload_id/complete" | jq -r .video_id)
echo "uploaded $size bytes in $(jq '.parts | length' <<<"$session") part(s): video $video_id"
status=processing
for _ in $(seq 1 600); do
  status=$(curl -fsS "${auth[@]}" "$reel/v1/videos/$video_id" | jq -r .status)
  [ "$status" = processing ] || break
  sleep 1
done
[ "$status" = ready ] || die "video $video_id ended $status, not ready (see $tmp/reel-$reel_port.log; BENCH_KEEP=1 keeps it)"
echo "ready"
stop "$reel_pid"
reel_pid=

# Profiles one reel binary under callgrind: N requests per target, counters zeroed before and
# dumped after each target; prints instructions per request and the top inclusive frames.
profile() { # profile LABEL BIN N
  local label=$1 bin=$2 n=$3 port pid target dump
  port=$(free_port 18400)
  env REEL_DATABASE__URL="sqlite://$tmp/reel.db" REEL_STORAGE__LOCAL_ROOT="$tmp/objects" \
    REEL_AUTH__JWT_SECRET=bench REEL_LOG__FILTER=warn REEL_PIPELINE__WORK_DIR="$tmp/work" \
    valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.$label.%p" \
    "$bin" serve --bind "127.0.0.1:$port" --no-workers >>"$tmp/profile-$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do port_free "$port" || break; sleep 0.1; done
  local url=http://127.0.0.1:$port/origin/packaged/$video_id/hls
  local tag_of
  tag_of=$(curl -sS -D - -o /dev/null "$url/$playlist" | tr -d '\r' | sed -n 's/^etag: //Ip')
  for target in "${targets[@]}"; do
    local header=() path=$target
    if [ "$target" = 304 ]; then header=(-H "If-None-Match: $tag_of") path=$playlist; fi
    : >"$tmp/curl.cfg"
    for _ in $(seq 1 20); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url/$path" >>"$tmp/curl.cfg"; done
    curl -sS "${header[@]}" -K "$tmp/curl.cfg" # warm-up: hot tier filled
    : >"$tmp/curl.cfg"
    for _ in $(seq 1 "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url/$path" >>"$tmp/curl.cfg"; done
    callgrind_control -z "$pid" >/dev/null
    curl -sS "${header[@]}" -K "$tmp/curl.cfg"
    callgrind_control -d "${target//\//_}" "$pid" >/dev/null
    dump=$(ls -t "$tmp/callgrind.$label.$pid."* | head -1)
    callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$tmp/annotate-$label-${target//\//_}.txt"
    local total
    total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' "$tmp/annotate-$label-${target//\//_}.txt")
    echo
    echo "### $label, \`$target\`: $((total / n)) instructions per request ($n requests)"
    echo
    grep -E '^ *[0-9,]+ \([ 0-9.]+%\)' "$tmp/annotate-$label-${target//\//_}.txt" | sed -n '2,16p' |
      sed -E 's/^ *([0-9,]+) \( *([0-9.]+)%\) +/| \2 % | /; s/$/ |/' | cut -c1-160
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

if [ -n "${BENCH_PROFILE:-}" ]; then
  say "profile (callgrind, $BENCH_PROFILE requests per target)"
  command -v valgrind >/dev/null || apt_install valgrind
  profile reel "$reel_bin" "$BENCH_PROFILE"
  [ -z "${BENCH_BASELINE_BIN:-}" ] || profile base "$BENCH_BASELINE_BIN" "$BENCH_PROFILE"
  exit 0
fi

say "servers"
server_cores=$(if [ -n "$server_cpus" ]; then cpu_count "$server_cpus"; else nproc; fi)
if [ "$mode" = edge ]; then default_workers=auto; else default_workers=$server_cores; fi
nginx_workers=${BENCH_NGINX_WORKERS:-$default_workers}
# reel as a pure HTTP server: no pipeline, sweeper or relay loops in the measured process.
start_reel "$server_cpus" "$reel_bin" "$reel_port" --no-workers
reel_pid=$started_pid
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
  base_port=$(free_port 18090)
  base=http://127.0.0.1:$base_port
  start_reel "$server_cpus" "$BENCH_BASELINE_BIN" "$base_port" --no-workers
  base_pid=$started_pid
fi

# Writes a static nginx config on the object dir: static_conf NAME PORT
static_conf() {
  mkdir -p "$tmp/$1"
  cat >"$tmp/$1.conf" <<EOF
worker_processes $nginx_workers;
pid $tmp/$1/nginx.pid;
error_log $tmp/$1/error.log warn;
events { worker_connections 4096; }
http {
  types {
    application/vnd.apple.mpegurl m3u8;
    video/mp4 mp4;
    video/iso.segment m4s;
    image/jpeg jpg;
  }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  # The default (1000) would make wrk reconnect every 1000 requests; reel has no such limit.
  keepalive_requests 10000000;
  client_body_temp_path $tmp/$1/body;
  proxy_temp_path $tmp/$1/proxy;
  fastcgi_temp_path $tmp/$1/fastcgi;
  uwsgi_temp_path $tmp/$1/uwsgi;
  scgi_temp_path $tmp/$1/scgi;
  # The same Cache-Control reel sends for a published video.
  map \$uri \$cache_control {
    ~\.m3u8\$ "public, max-age=60";
    default   "public, max-age=31536000, immutable";
  }
  server {
    listen 127.0.0.1:$2;
    root $tmp/objects;
    location /packaged/ { add_header Cache-Control \$cache_control; }
  }
}
EOF
}
# Starts nginx on a config and sets started_pid: start_nginx CONF PORT
start_nginx() {
  taskset -c "$(cpus_or_all "$server_cpus")" "$nginx_bin" -c "$1" -g 'daemon off;' >>"$tmp/nginx-stdout.log" 2>&1 &
  started_pid=$!
  wait_for_port "$2" nginx
}
nginx_port=$(free_port 18180)
nginx=http://127.0.0.1:$nginx_port
static_conf nginx "$nginx_port"
start_nginx "$tmp/nginx.conf" "$nginx_port"
nginx_pid=$started_pid
if [ "$mode" = edge ]; then
  twin_port=$(free_port $((nginx_port + 1)))
  twin=http://127.0.0.1:$twin_port
  static_conf twin "$twin_port"
  start_nginx "$tmp/twin.conf" "$twin_port"
  twin_pid=$started_pid
  # The caching tier as shipped, both upstreams pointing at the one reel.
  tier_port=$(free_port $((twin_port + 1)))
  tier=http://127.0.0.1:$tier_port
  mkdir -p "$tmp/tier"
  sed -e "s|@RUN@|$tmp/tier|g" -e "s|@LISTEN@|127.0.0.1:$tier_port|g" -e "s|@SERVE_1@|127.0.0.1:$reel_port|g" \
    -e "s|@SERVE_2@|127.0.0.1:$reel_port|g" -e "s|^worker_processes .*|worker_processes $nginx_workers;|" \
    deploy/nginx/reel.conf >"$tmp/tier.conf"
  start_nginx "$tmp/tier.conf" "$tier_port"
  tier_pid=$started_pid
fi
echo "mode  $mode"
echo "reel  $reel/origin/packaged/$video_id/hls/ (pid $reel_pid, cpus ${server_cpus:-all})"
[ -z "${base:-}" ] || echo "base  $base/origin/packaged/$video_id/hls/ ($BENCH_BASELINE_BIN, pid $base_pid)"
echo "nginx $nginx/packaged/$video_id/hls/ (pid $nginx_pid, $nginx_workers worker(s), cpus ${server_cpus:-all})"
[ -z "${twin:-}" ] || echo "twin  $twin/packaged/$video_id/hls/ (the same config, pid $twin_pid)"
[ -z "${tier:-}" ] || echo "tier  $tier/origin/packaged/$video_id/hls/ (deploy/nginx/reel.conf in front of reel, pid $tier_pid)"
echo "wrk   -t$threads -c$connections -d$duration --latency (cpus ${wrk_cpus:-all}), warm-up $warmup, $rounds round(s)"

url_of() { # url_of SERVER TARGET
  case $1 in
    reel) echo "$reel/origin/packaged/$video_id/hls/$2" ;;
    base) echo "$base/origin/packaged/$video_id/hls/$2" ;;
    tier) echo "$tier/origin/packaged/$video_id/hls/$2" ;;
    nginx) echo "$nginx/packaged/$video_id/hls/$2" ;;
    twin) echo "$twin/packaged/$video_id/hls/$2" ;;
  esac
}

say "checking every server answers the same"
for target in "${targets[@]}"; do
  [ "$target" != 304 ] || continue
  for server in "${servers[@]}"; do
    out=$tmp/check-$server
    meta=$(curl -sS -o "$out" -w '%{http_code} %{content_type}' "$(url_of "$server" "$target")")
    [ "${meta%% *}" = 200 ] || die "$server answered ${meta%% *} for $target"
    printf '%s %s\n' "${meta#* }" "$(sha256sum <"$out" | cut -c1-64)" >"$out.sum"
    cmp -s "$tmp/check-reel.sum" "$out.sum" ||
      die "reel and $server differ for $target: $(cat "$tmp/check-reel.sum") vs $(cat "$out.sum")"
  done
  echo "$target: 200, $(stat -c %s "$tmp/check-reel") bytes, $(cut -d' ' -f1 "$tmp/check-reel.sum"), sha256 $(cut -c1-16 <<<"$(cut -d' ' -f2 "$tmp/check-reel.sum")")…"
done
declare -A etag
for server in "${servers[@]}"; do
  etag[$server]=$(curl -sS -D - -o /dev/null "$(url_of "$server" "$playlist")" | tr -d '\r' | sed -n 's/^etag: //Ip')
  [ -n "${etag[$server]}" ] || die "$server sent no ETag for $playlist"
  status=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: ${etag[$server]}" "$(url_of "$server" "$playlist")")
  [ "$status" = 304 ] || die "$server answered $status, not 304, to If-None-Match ${etag[$server]}"
done
echo "304: every server revalidates $playlist with its own ETag"

# Runs wrk and prints "REQUESTS_PER_S P99_MS"; fails on socket errors or non-2xx answers, or
# with an ETag (sent as If-None-Match) on anything but 304s (which wrk counts as non-2xx).
load() { # load LABEL URL DURATION [ETAG]
  local log=$tmp/wrk-$1.txt header=()
  [ -z "${4:-}" ] || header=(-H "If-None-Match: $4")
  taskset -c "$(cpus_or_all "$wrk_cpus")" wrk -t"$threads" -c"$connections" -d"$3" --latency "${header[@]}" "$2" >"$log"
  if grep -q 'Socket errors' "$log"; then cat "$log" >&2; die "wrk saw socket errors against $2"; fi
  if [ -z "${4:-}" ] && grep -q 'Non-2xx' "$log"; then cat "$log" >&2; die "wrk saw non-2xx answers from $2"; fi
  if [ -n "${4:-}" ]; then
    local requests non
    requests=$(awk '/requests in/ { print $1 }' "$log")
    non=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$log")
    [ "${non:-0}" = "$requests" ] || { cat "$log" >&2; die "not every answer from $2 was a 304"; }
  fi
  awk '
    $1 == "99%" {
      v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
      p99 = v * (unit == "us" ? 0.001 : unit == "s" ? 1000 : 1)
    }
    $1 == "Requests/sec:" { rps = $2 }
    END { if (rps == "" || p99 == "") exit 1; printf "%.0f %.2f\n", rps, p99 }
  ' "$log" || die "cannot parse wrk output $log"
}

say "load (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
declare -A rps p99
for round in $(seq 1 "$rounds"); do
  # The server order is reversed every other round.
  order=("${servers[@]}")
  if [ $((round % 2)) = 0 ]; then
    order=()
    for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
  fi
  for target in "${targets[@]}"; do
    for server in "${order[@]}"; do
      tag= path=$target
      if [ "$target" = 304 ]; then tag=${etag[$server]} path=$playlist; fi
      url=$(url_of "$server" "$path")
      load "warmup" "$url" "$warmup" "$tag" >/dev/null
      result=$(load "$server-${target//\//_}-$round" "$url" "$duration" "$tag")
      read -r r p <<<"$result"
      rps[$target,$round,$server]=$r
      p99[$target,$round,$server]=$p
      echo "round $round $target $server: $r req/s, p99 $p ms"
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

say "reel hot tier"
curl -fsS "$reel/metrics" | grep '^hot_tier' || echo "(no hot_tier metrics)"

median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { # row LABEL SERVER_RPS NGINX_RPS SERVER_P99 NGINX_P99
  printf '| %s | %.0f | %.0f | %s | %.2f ms | %.2f ms | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4" "$5" "$(ratio "$4" "$5")"
}

say "result"
echo "mode $mode: wrk -t$threads -c$connections -d$duration --latency, $rounds round(s), servers on cpus ${server_cpus:-all}, wrk on cpus ${wrk_cpus:-all}, nginx $nginx_workers worker(s)"
echo
echo "| target | server | req/s | nginx req/s | ratio | p99 | nginx p99 | p99 ratio |"
echo "|---|---|---|---|---|---|---|---|"
for target in "${targets[@]}"; do
  for server in "${servers[@]}"; do
    [ "$server" != nginx ] || continue
    s_rps=() n_rps=() s_p99=() n_p99=()
    for round in $(seq 1 "$rounds"); do
      s_rps+=("${rps[$target,$round,$server]}") n_rps+=("${rps[$target,$round,nginx]}")
      s_p99+=("${p99[$target,$round,$server]}") n_p99+=("${p99[$target,$round,nginx]}")
      [ "$rounds" = 1 ] || row "\`$target\` round $round | $server" "${rps[$target,$round,$server]}" \
        "${rps[$target,$round,nginx]}" "${p99[$target,$round,$server]}" "${p99[$target,$round,nginx]}"
    done
    label="\`$target\` | $server"
    [ "$rounds" = 1 ] || label="**\`$target\` median** | **$server**"
    row "$label" "$(median "${s_rps[@]}")" "$(median "${n_rps[@]}")" "$(median "${s_p99[@]}")" "$(median "${n_p99[@]}")"
  done
done
