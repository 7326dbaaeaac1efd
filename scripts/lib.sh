# Shared helpers for reel's scripts (sourced, not run).

say() { printf '\n== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() { [ "$(id -u)" -eq 0 ]; }

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
