#!/usr/bin/env bash
# The API contract check (part of scripts/test.sh): validates /openapi.json as OpenAPI 3.1 and
# runs schemathesis against a throwaway `reel serve` (SQLite + local files in a temp dir) three
# times: with a creator token, an admin token and no token. Every check, the stateful phase,
# a fixed seed and a bounded number of examples; any failure fails the run.
#
# Uploads are capped at 1 MiB (one part), so a stateful scenario can run a whole upload through
# the links: create, part (sized by hooks.py), complete, video. One worker: CPython 3.11's `ast`
# is not thread-safe (gh-106905), and Hypothesis parses lambdas while drawing.
#
# Usage: scripts/contract/run.sh WORK_DIR REEL_BINARY
# Needs python3 with venv (installed with apt when missing, as root); the pinned Python packages
# go into a virtualenv under WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

work=$1
reel=$(realpath "$2")
dir="$work/contract"
mkdir -p "$dir"

command -v python3 >/dev/null || apt_install python3
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-compile -r scripts/contract/requirements.txt

port=$(free_port 18080)
export REEL_SERVER__BIND="127.0.0.1:$port" REEL_SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
  REEL_DATABASE__URL="sqlite://$dir/reel.db" REEL_STORAGE__LOCAL_ROOT="$dir/objects" \
  REEL_AUTH__JWT_SECRET_FILE="$dir/jwt-secret" REEL_PIPELINE__WORK_DIR="$dir/work" \
  REEL_SERVER__WEB_DIR="$dir/no-web-app" REEL_UPLOADS__MAX_SIZE_BYTES=$((1 << 20))
# schemathesis opens thousands of sessions as one user: lift the per-user quotas (tested in
# tests/api/quotas.rs) so that its valid requests are not refused with 429/507.
export REEL_QUOTAS__OPEN_UPLOADS=1000000 REEL_QUOTAS__COMPLETED_PER_HOUR=1000000 \
  REEL_QUOTAS__PROCESSING_VIDEOS=1000000
"$reel" serve >"$dir/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
wait_for_port "$port" "reel serve"
base="http://127.0.0.1:$port"

echo "-- /openapi.json is a valid OpenAPI 3.1 document"
"$dir/venv/bin/python" scripts/contract/validate.py "$base/openapi.json"

creator=$("$reel" token --user contract-creator)
admin=$("$reel" token --user contract-ops --admin)
failed=0
run() {
  local name=$1 token=$2
  shift 2
  echo "-- schemathesis: $name"
  local auth=()
  [ -z "$token" ] || auth=(-H "Authorization: Bearer $token")
  if ! REEL_CONTRACT_TOKEN=$token SCHEMATHESIS_HOOKS=scripts/contract/hooks.py "$dir/venv/bin/st" --config-file scripts/contract/schemathesis.toml run "$base/openapi.json" \
    --checks all --phases examples,coverage,fuzzing,stateful --seed 20261202 --max-examples 20 \
    --workers 1 --no-color --report junit --report-dir "$dir/report-$name" "${auth[@]}" "$@"; then
    echo "schemathesis ($name) found failures" >&2
    failed=$((failed + 1))
  fi
}
run creator "$creator" --exclude-tag ops
run admin "$admin"
run anonymous ""
[ "$failed" -eq 0 ] || { tail -n 40 "$dir/serve.log" >&2; die "$failed of 3 schemathesis runs failed"; }
echo "contract: 3 passed, 0 failed"
