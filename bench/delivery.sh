#!/usr/bin/env bash
# Delivery benchmark: the same packaged HLS files served by reel's origin and by nginx (static)
# on loopback, loaded with wrk. Prints a Markdown table of requests/s and p99 latency for both.
#
#   ./bench/delivery.sh                    # as root on Debian/Ubuntu: installs nginx, wrk, ffmpeg
#   BENCH_DURATION=30s BENCH_ROUNDS=5 ./bench/delivery.sh
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
#   BENCH_CONNECTIONS [32]   wrk connections
#   BENCH_THREADS [1]        wrk threads
#   BENCH_ROUNDS [3]         rounds; the server order alternates from one round to the next
#   BENCH_SERVER_CPUS [0]    taskset CPU list for reel and nginx (empty: unpinned)
#   BENCH_WRK_CPUS [1]       taskset CPU list for wrk (empty: unpinned)
#   BENCH_NGINX_WORKERS      nginx worker_processes [number of CPUs in BENCH_SERVER_CPUS, else nproc]
#   BENCH_KEEP=1             keep the temp dir (logs, configs, wrk outputs) for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

duration=${BENCH_DURATION:-15s}
warmup=${BENCH_WARMUP:-3s}
connections=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-1}
rounds=${BENCH_ROUNDS:-3}
server_cpus=${BENCH_SERVER_CPUS-0}
wrk_cpus=${BENCH_WRK_CPUS-1}
targets=(720p/seg-00002.m4s 360p/index.m3u8)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
reel_bin=$CARGO_TARGET_DIR/release/reel

tmp=$(mktemp -d /tmp/reel-bench-delivery.XXXXXX)
chmod 755 "$tmp" # nginx workers run as an unprivileged user and must read the object dir
reel_pid=
nginx_pid=
stop() { # stop PID: TERM, then wait for it to exit
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$reel_pid"
  stop "$nginx_pid"
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

# Starts reel on $reel_port with the throwaway database and object dir; extra args go to serve.
start_reel() {
  local cpus=$1
  shift
  taskset -c "$(cpus_or_all "$cpus")" env REEL_DATABASE__URL="sqlite://$tmp/reel.db" \
    REEL_STORAGE__LOCAL_ROOT="$tmp/objects" REEL_AUTH__JWT_SECRET=bench-secret-of-at-least-32-bytes REEL_LOG__FILTER=warn \
    REEL_PIPELINE__WORKERS=1 REEL_PIPELINE__WORK_DIR="$tmp/work" \
    "$reel_bin" serve --bind "127.0.0.1:$reel_port" "$@" >>"$tmp/reel.log" 2>&1 &
  reel_pid=$!
  wait_for_port "$reel_port" reel
}

say "ingest: upload a clip and wait until it is ready"
reel_port=$(free_port 18080)
reel=http://127.0.0.1:$reel_port
mkdir -p "$tmp/objects" "$tmp/work"
start_reel "" # unpinned: ingest is not measured, and transcoding is faster on every core
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
[ "$status" = ready ] || die "video $video_id ended $status, not ready (see $tmp/reel.log; BENCH_KEEP=1 keeps it)"
echo "ready"
stop "$reel_pid"
reel_pid=

say "servers"
server_cores=$(if [ -n "$server_cpus" ]; then cpu_count "$server_cpus"; else nproc; fi)
nginx_workers=${BENCH_NGINX_WORKERS:-$server_cores}
# reel as a pure HTTP server: no pipeline, sweeper or relay loops in the measured process.
start_reel "$server_cpus" --no-workers
nginx_port=$(free_port 18180)
nginx=http://127.0.0.1:$nginx_port
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<EOF
worker_processes $nginx_workers;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
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
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  # The same Cache-Control reel sends for a published video.
  map \$uri \$cache_control {
    ~\.m3u8\$ "public, max-age=60";
    default   "public, max-age=31536000, immutable";
  }
  server {
    listen 127.0.0.1:$nginx_port;
    root $tmp/objects;
    location /packaged/ { add_header Cache-Control \$cache_control; }
  }
}
EOF
taskset -c "$(cpus_or_all "$server_cpus")" "$nginx_bin" -c "$tmp/nginx.conf" -g 'daemon off;' >>"$tmp/nginx/stdout.log" 2>&1 &
nginx_pid=$!
wait_for_port "$nginx_port" nginx
echo "reel  $reel/origin/packaged/$video_id/hls/ (pid $reel_pid, cpus ${server_cpus:-all})"
echo "nginx $nginx/packaged/$video_id/hls/ (pid $nginx_pid, $nginx_workers worker(s), cpus ${server_cpus:-all})"
echo "wrk   -t$threads -c$connections -d$duration --latency (cpus ${wrk_cpus:-all}), warm-up $warmup, $rounds round(s)"

url_of() { # url_of reel|nginx TARGET
  case $1 in
    reel) echo "$reel/origin/packaged/$video_id/hls/$2" ;;
    nginx) echo "$nginx/packaged/$video_id/hls/$2" ;;
  esac
}

say "checking both servers answer the same"
for target in "${targets[@]}"; do
  for server in reel nginx; do
    out=$tmp/check-$server
    meta=$(curl -sS -o "$out" -w '%{http_code} %{content_type}' "$(url_of "$server" "$target")")
    [ "${meta%% *}" = 200 ] || die "$server answered ${meta%% *} for $target"
    printf '%s %s\n' "${meta#* }" "$(sha256sum <"$out" | cut -c1-64)" >"$out.sum"
  done
  cmp -s "$tmp/check-reel.sum" "$tmp/check-nginx.sum" ||
    die "reel and nginx differ for $target: $(cat "$tmp/check-reel.sum") vs $(cat "$tmp/check-nginx.sum")"
  echo "$target: 200, $(stat -c %s "$tmp/check-reel") bytes, $(cut -d' ' -f1 "$tmp/check-reel.sum"), sha256 $(cut -c1-16 <<<"$(cut -d' ' -f2 "$tmp/check-reel.sum")")…"
done

# Runs wrk and prints "REQUESTS_PER_S P99_MS"; fails on socket errors or non-2xx answers.
load() { # load LABEL URL DURATION
  local log=$tmp/wrk-$1.txt
  taskset -c "$(cpus_or_all "$wrk_cpus")" wrk -t"$threads" -c"$connections" -d"$3" --latency "$2" >"$log"
  if grep -qE 'Socket errors|Non-2xx' "$log"; then cat "$log" >&2; die "wrk saw errors against $2"; fi
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
  if [ $((round % 2)) = 1 ]; then order=(reel nginx); else order=(nginx reel); fi
  for target in "${targets[@]}"; do
    for server in "${order[@]}"; do
      url=$(url_of "$server" "$target")
      load "warmup" "$url" "$warmup" >/dev/null
      result=$(load "$server-${target//\//_}-$round" "$url" "$duration")
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
row() { # row LABEL REEL_RPS NGINX_RPS REEL_P99 NGINX_P99
  printf '| %s | %.0f | %.0f | %s | %.2f ms | %.2f ms | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4" "$5" "$(ratio "$4" "$5")"
}

say "result"
echo "wrk -t$threads -c$connections -d$duration --latency, $rounds round(s), servers on cpus ${server_cpus:-all}, wrk on cpus ${wrk_cpus:-all}, nginx $nginx_workers worker(s)"
echo
echo "| target | reel req/s | nginx req/s | ratio | reel p99 | nginx p99 | p99 ratio |"
echo "|---|---|---|---|---|---|---|"
for target in "${targets[@]}"; do
  reel_rps=() nginx_rps=() reel_p99=() nginx_p99=()
  for round in $(seq 1 "$rounds"); do
    reel_rps+=("${rps[$target,$round,reel]}") nginx_rps+=("${rps[$target,$round,nginx]}")
    reel_p99+=("${p99[$target,$round,reel]}") nginx_p99+=("${p99[$target,$round,nginx]}")
    [ "$rounds" = 1 ] || row "\`$target\` round $round" "${rps[$target,$round,reel]}" "${rps[$target,$round,nginx]}" \
      "${p99[$target,$round,reel]}" "${p99[$target,$round,nginx]}"
  done
  label="\`$target\`"
  [ "$rounds" = 1 ] || label="**\`$target\` median**"
  row "$label" "$(median "${reel_rps[@]}")" "$(median "${nginx_rps[@]}")" \
    "$(median "${reel_p99[@]}")" "$(median "${nginx_p99[@]}")"
done
