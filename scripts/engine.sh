#!/usr/bin/env bash
# Make a Docker engine (with Compose v2 and Buildx) reachable.
# An engine that already answers is used as it is and never touched.
set -euo pipefail

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
STATE_DIR=${COURSE_STATE_DIR:-/var/lib/genai-course}
LOG=/var/log/genai-course-dockerd.log
say() { printf 'engine: %s\n' "$*"; }

have_plugins() { docker compose version >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; }

need_help() {
  cat >&2 <<'MSG'
engine: Docker Engine with the Compose v2 and Buildx plugins is required.
engine: Install Docker Desktop, or Docker Engine from https://docs.docker.com/engine/install/
engine: (on Debian/Ubuntu as root, `make engine` installs it for you), then run this again.
MSG
  exit 1
}

install_plugins() {
  # Debian 12 ships neither Compose v2 nor Buildx; Debian 13's packages work as plugins.
  say "installing the Compose v2 and Buildx CLI plugins from Debian 13 packages"
  local apt_dir="$STATE_DIR/apt-trixie" dl
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$PLUGIN_DIR"
  echo "deb http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
              -o "Dir::State::Status=$apt_dir/status" -o "APT::Get::List-Cleanup=0")
  : > "$apt_dir/status"
  apt-get "${opts[@]}" -qq update
  dl=$(mktemp -d); chmod 755 "$dl"  # apt downloads as _apt
  (cd "$dl" && apt-get "${opts[@]}" -qq download docker-compose docker-buildx)
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$dl/root"; done
  install -m 0755 "$(find "$dl/root" -path '*cli-plugins/docker-compose' -type f | head -n1)" "$PLUGIN_DIR/docker-compose"
  install -m 0755 "$(find "$dl/root" -path '*cli-plugins/docker-buildx' -type f | head -n1)" "$PLUGIN_DIR/docker-buildx"
  rm -rf "$dl"
}

wait_for_engine() {
  local deadline=$((SECONDS + ${1:-60}))
  until docker info >/dev/null 2>&1; do
    if (( SECONDS > deadline )); then
      say "dockerd did not answer in time; last lines of $LOG:" >&2
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

if docker info >/dev/null 2>&1; then
  if have_plugins; then say "using the running engine ($(docker version -f '{{.Server.Version}}'))"; exit 0; fi
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || need_help
  install_plugins; have_plugins || need_help; exit 0
fi

[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || need_help

if ! command -v dockerd >/dev/null 2>&1; then
  say "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update
  apt-get -qq install -y --no-install-recommends docker.io iptables ca-certificates >/dev/null
fi
have_plugins || install_plugins

say "starting dockerd (log: $LOG)"
# setsid: the daemon outlives the make process that started it.
setsid dockerd >"$LOG" 2>&1 < /dev/null &
wait_for_engine 90
say "engine ready: $(docker version -f 'server {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /'), $(docker buildx version | awk '{print "buildx " $2}')"
