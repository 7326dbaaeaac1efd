#!/usr/bin/env bash
# The multi-process test (a step of scripts/test.sh): the production layout of
# scripts/cluster.sh, driven through nginx, with processes killed under load.
#
#   scripts/cluster-test.sh WORK_DIR REEL_BINARY
#
# 1. 8 users upload 5 clips each (40 uploads, `reel upload`, concurrently) through nginx with
#    parts going through `reel serve`; meanwhile one worker is SIGKILLed mid-transcode and one
#    serve is SIGKILLed while uploads are in flight (the clients retry and resume). Both are
#    started again. All 40 videos must end `ready`, every job must have finished exactly once
#    (only the job the killed worker held may have a second attempt).
# 2. While the videos are processing, their playlists are polled through nginx: a playlist
#    without `#EXT-X-ENDLIST` (still growing) must never come from the cache, and once a video is
#    ready nginx answers its final playlist.
# 3. Every init and media segment of every video is fetched from both serve processes directly
#    and through nginx (miss, then hit): all copies are byte-identical.
# 4. Both serve processes are stopped: nginx still answers a cached segment (fresh) and an
#    expired playlist (stale on error), byte-identical.
# Own ports, own temp dirs; any failure fails the run with the cluster's logs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

work=$1
export REEL_BIN
REEL_BIN=$(realpath "$2")
export CLUSTER_DIR=$work/cluster CLUSTER_PORT=${CLUSTER_PORT:-18300} CLUSTER_DIRECT_UPLOADS=false
# Short lease so a killed worker's job is picked up quickly; short playlist TTL so staleness
# shows within the test; no web app.
# Quotas well above the test's load: it checks the topology, not the per-user limits.
export REEL_QUOTAS__PROCESSING_VIDEOS=100 REEL_QUOTAS__OPEN_UPLOADS=100
export REEL_PIPELINE__LEASE=6s REEL_DELIVERY__PLAYLIST_MAX_AGE=4s REEL_SERVER__WEB_DIR=$work/no-web-app \
  REEL_LOG__FORMAT=json
USERS=8 PER_USER=5
total=$((USERS * PER_USER))
t=$work/cluster-test
mkdir -p "$t"

fail() {
  echo "cluster test FAILED: $*" >&2
  for log in "$CLUSTER_DIR"/*.log; do
    echo "---- $log (last 30 lines)" >&2
    tail -30 "$log" >&2 || true
  done
  exit 1
}
cleanup() {
  local job
  for job in $(jobs -p); do # uploaders (and their `reel upload`) and the poller
    pkill -P "$job" 2>/dev/null || true
    kill "$job" 2>/dev/null || true
  done
  scripts/cluster.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/cluster.sh start
# shellcheck disable=SC1091
. "$CLUSTER_DIR/cluster.env"
# shellcheck disable=SC1091
. "$CLUSTER_DIR/reel.env"
sql() { psql -X -q -At "$DATABASE_URL" -c "$1"; }
# The body of a URL (fails the test on anything but 2xx), or its sha256.
get() { curl -fsS "$1" || fail "GET $1"; }
sha() {
  curl -fsS -o "$t/body" "$1" || fail "GET $1"
  sha256sum <"$t/body" | cut -c1-64
}

say "clips (8 users, 2 s, 320x568)"
for u in $(seq 1 "$USERS"); do
  ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=320x568:rate=30:duration=2" \
    -f lavfi -i "sine=frequency=$((300 + 50 * u)):sample_rate=48000:duration=2" \
    -vf "hue=h=$((u * 40))" -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest \
    "$t/user-$u.mp4"
  for k in $(seq 1 "$PER_USER"); do cp "$t/user-$u.mp4" "$t/user-$u-$k.mp4"; done
done

say "$total uploads from $USERS users through nginx ($URL), killing a worker and a serve meanwhile"
uploader() { # uploader USER: uploads that user's clips one after another, resuming on failure
  local u=$1 token k attempt
  token=$("$REEL_BIN" token --user "user-$u")
  mkdir -p "$t/state-$u"
  for k in $(seq 1 "$PER_USER"); do
    for attempt in 1 2 3 4; do
      if REEL_CLIENT_STATE_DIR=$t/state-$u "$REEL_BIN" --server "$URL" --token "$token" \
        upload "$t/user-$u-$k.mp4" >>"$t/upload-$u.log" 2>&1; then
        break
      fi
      echo "user $u clip $k: attempt $attempt failed, resuming" >>"$t/resumes.log"
      [ "$attempt" -lt 4 ] || return 1
      sleep 1
    done
  done
}
upload_pids=()
for u in $(seq 1 "$USERS"); do
  uploader "$u" &
  upload_pids+=($!)
done

# A serve process dies while uploads are in flight (nginx and the clients retry).
for _ in $(seq 1 200); do
  [ "$(sql "SELECT count(*) FROM upload_sessions")" -ge 6 ] && break
  sleep 0.05
done
kill -9 "$PID_serve_1"
echo "SIGKILLed serve-1 with $(sql "SELECT count(*) FROM upload_sessions") upload sessions open or done"
# A worker dies while it runs ffmpeg: its lease expires and the job runs again elsewhere.
killed=
for _ in $(seq 1 1200); do
  if pgrep -P "$PID_worker_1" ffmpeg >/dev/null; then
    kill -9 "$PID_worker_1"
    killed=1
    break
  fi
  sleep 0.05
done
[ -n "$killed" ] || fail "worker-1 never ran ffmpeg"
echo "SIGKILLed worker-1 while it ran ffmpeg"
sleep 1
scripts/cluster.sh respawn serve-1
scripts/cluster.sh respawn worker-1
# shellcheck disable=SC1091
. "$CLUSTER_DIR/cluster.env" # the new pids

# The URL of a manifest column's value (an origin key or an absolute URL).
manifest_url() { case $1 in http*) echo "$1" ;; *) echo "$URL/origin/$1" ;; esac; }

# Playlists of processing videos (the first variant of the preview master), polled through
# nginx until every video is ready.
poll_playlists() { # the previews are served only under a signed URL, which the API hands admins
  local admin
  admin=$("$REEL_BIN" token --user cluster-ops --admin)
  while :; do
    local ids id master variant
    ids=$(sql "SELECT video_id FROM video_assets WHERE status = 'processing' AND playable_at IS NOT NULL")
    if [ -z "$ids" ] && [ -e "$t/uploads-done" ] &&
      [ "$(sql "SELECT count(*) FROM video_assets WHERE status = 'processing'")" = 0 ]; then return 0; fi
    for id in $ids; do
      master=$(curl -sS -H "Authorization: Bearer $admin" "$URL/v1/videos/$id" | jq -r '.playback_manifest_url // empty') || continue
      [ -n "$master" ] || continue
      variant=$(curl -sS "$master" | grep -v '^#' | head -1) || continue
      [ -n "$variant" ] || continue
      curl -sS -o "$t/pl" -D "$t/pl-h" "${master%/*}/$variant" || continue
      grep -q '^HTTP/1.1 200' "$t/pl-h" || continue
      local cache
      cache=$(tr -d '\r' <"$t/pl-h" | sed -n 's/^X-Cache-Status: //Ip')
      if ! grep -q '#EXT-X-ENDLIST' "$t/pl"; then
        echo "$master $variant growing $cache" >>"$t/growing.log"
        case $cache in HIT | STALE | UPDATING) fail "nginx answered the growing ${master%/*}/$variant from its cache ($cache)" ;; esac
      fi
    done
    sleep 0.2
  done
}
poll_playlists &
poller=$!

for pid in "${upload_pids[@]}"; do wait "$pid" || fail "an uploader gave up (see $t/upload-*.log)"; done
touch "$t/uploads-done"
echo "all uploads completed; client re-runs: $(cat "$t/resumes.log" 2>/dev/null | wc -l), client retries: $(cat "$t"/upload-*.log | grep -c "^retry")"

# Until no video is processing and no job (the rest of each ladder included) is left.
for _ in $(seq 1 300); do
  [ "$(sql "SELECT count(*) FROM video_assets WHERE status = 'processing'")" = 0 ] &&
    [ "$(sql "SELECT count(*) FROM video_processing_jobs WHERE status <> 'done'")" = 0 ] && break
  sleep 1
done
wait "$poller" || fail "playlist check"
ready=$(sql "SELECT count(*) FROM video_assets WHERE status = 'ready'")
[ "$ready" = "$total" ] || fail "$ready of $total videos ready: $(sql "SELECT status, count(*) FROM video_assets GROUP BY status")"
echo "$ready of $total videos ready; growing playlists seen through nginx (never from cache): $(cat "$t/growing.log" 2>/dev/null | wc -l)"

say "every job finished exactly once"
pending=$(sql "SELECT count(*) FROM video_processing_jobs WHERE status <> 'done'")
[ "$pending" = 0 ] || fail "$pending jobs not done: $(sql "SELECT stage, status, attempt FROM video_processing_jobs WHERE status <> 'done'")"
retried=$(sql "SELECT count(*) FROM video_processing_jobs WHERE attempt > 1")
[ "$retried" -le 1 ] || fail "$retried jobs ran more than once: $(sql "SELECT id, stage, attempt FROM video_processing_jobs WHERE attempt > 1")"
finished=$(cat "$CLUSTER_DIR"/worker-*.log | grep '^{' |
  jq -r 'select(.message == "job finished" and .outcome == "Done") | .span.job_id' | sort)
twice=$(uniq -d <<<"$finished")
[ -z "$twice" ] || fail "jobs finished twice: $twice"
jobs=$(sql "SELECT count(*) FROM video_processing_jobs")
[ "$(grep -c . <<<"$finished")" = "$jobs" ] || fail "$(grep -c . <<<"$finished") finished job runs for $jobs jobs"
echo "$jobs jobs, each finished once; $retried resumed after the worker was killed"

say "every segment byte-identical from serve-1, serve-2 and nginx (miss and hit)"
# Paths are taken from the manifests (a resumed job publishes beside the first attempt).
: >"$t/paths"
for key in $(sql "SELECT manifest_url FROM video_assets"); do
  master=$(manifest_url "$key")
  variants=$(get "$master" | grep -v '^#')
  [ -n "$variants" ] || fail "no variant in $master"
  for variant in $variants; do
    playlist=${master%/*}/$variant
    files=$(get "$playlist" | sed -n 's/^#EXT-X-MAP:URI="\(.*\)"/\1/p; /^seg-/p')
    [ -n "$files" ] || fail "no segment in $playlist"
    dir=${playlist#"$URL"/}
    for file in $files; do echo "${dir%/*}/$file" >>"$t/paths"; done
  done
done
# One keep-alive curl per source: serve-1, serve-2, nginx (filling its cache), nginx again.
fetch_all() { # fetch_all NAME BASE_URL
  mkdir -p "$t/objects-$1"
  awk -v base="$2" -v out="$t/objects-$1" '{ printf "url = \"%s/%s\"\noutput = \"%s/%d\"\n", base, $0, out, NR }' \
    "$t/paths" >"$t/fetch-$1.cfg"
  curl -fsS --fail-early -K "$t/fetch-$1.cfg" || fail "fetching the segments from $2"
  (cd "$t/objects-$1" && sha256sum -- * | sort -k2) >"$t/sums-$1"
}
fetch_all serve-1 "$SERVE_1"
fetch_all serve-2 "$SERVE_2"
fetch_all nginx-miss "$URL"
fetch_all nginx-hit "$URL"
for name in serve-2 nginx-miss nginx-hit; do
  diff -q "$t/sums-serve-1" "$t/sums-$name" >/dev/null ||
    fail "$name differs from serve-1: $(diff "$t/sums-serve-1" "$t/sums-$name" | head -3)"
done
echo "$(wc -l <"$t/paths") init and media segments identical four ways (serve-1, serve-2, nginx miss, nginx hit)"

say "both serve processes stopped: nginx keeps answering what it cached"
master=$(manifest_url "$(sql "SELECT manifest_url FROM video_assets LIMIT 1")")
playlist=${master%/*}/$(get "$master" | grep -v '^#' | head -1)
segment=${playlist%/*}/$(get "$playlist" | grep '^seg-' | head -1)
want_segment=$(sha "$segment")
want_playlist=$(sha "$playlist")
want_playlist=$(sha "$playlist") # cached now
kill "$PID_serve_1" "$PID_serve_2"
while kill -0 "$PID_serve_1" 2>/dev/null || kill -0 "$PID_serve_2" 2>/dev/null; do sleep 0.1; done
sleep 5 # past the playlist's max-age (4 s): only a stale copy is left
[ "$(sha "$segment")" = "$want_segment" ] || fail "cached segment not served with both serves down"
status=$(curl -sS -o "$t/stale" -w '%{http_code}' -D "$t/stale-h" "$playlist")
[ "$status" = 200 ] || fail "expired playlist not served stale with both serves down ($status)"
[ "$(sha256sum <"$t/stale" | cut -c1-64)" = "$want_playlist" ] || fail "stale playlist differs"
grep -qi '^X-Cache-Status: STALE' "$t/stale-h" || fail "expired playlist not marked STALE: $(cat "$t/stale-h")"
echo "segment (HIT) and expired playlist (STALE) served by nginx alone"

say "cluster test passed"
