#!/usr/bin/env bash
# The grading queue: a project-owned Redis (Debian's redis-server) for `make grading-worker` and
# `make autograde` in queue mode (course/instructor/taskqueue.py).
#   scripts/redis.sh start   install redis-server if missing (root on Debian), start the instance
#   scripts/redis.sh stop    stop it
#   scripts/redis.sh install install redis-server if missing (what the tests need)
# Its own config, data and log in GENAI_QUEUE_DIR (default .state/redis), its own port
# (GENAI_QUEUE_PORT, default 6390), a password generated once into GENAI_QUEUE_DIR/password,
# listening only on the addresses of GENAI_QUEUE_BIND (default 127.0.0.1; add this host's LAN
# address for grading hosts). A Redis already running on another port is never touched.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${GENAI_QUEUE_DIR:-$ROOT/.state/redis}
PORT=${GENAI_QUEUE_PORT:-6390}
BIND=${GENAI_QUEUE_BIND:-127.0.0.1}
say() { printf 'grading-queue: %s\n' "$*"; }

running() { [ -s "$DIR/redis.pid" ] && grep -qs redis "/proc/$(cat "$DIR/redis.pid")/comm"; }
ping() { REDISCLI_AUTH=$(cat "$DIR/password") redis-cli -h "${BIND%% *}" -p "$PORT" ping 2>/dev/null | grep -q PONG; }

install_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "redis-server is required: install Debian's redis-server package (apt-get install redis-server)," >&2
    say "or run this as root on Debian/Ubuntu, which installs it" >&2
    exit 1
  fi
  say "installing Debian's redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update
  apt-get -qq install -y --no-install-recommends redis-server redis-tools >/dev/null
}

start() {
  case "$PORT" in ''|*[!0-9]*) say "GENAI_QUEUE_PORT=$PORT: a port number" >&2; exit 2 ;; esac
  install_redis
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  if [ ! -s "$DIR/password" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/password")
  fi
  if running && ping; then
    say "running on ${BIND// /,} port $PORT (password in $DIR/password)"
    return
  fi
  # The config holds the password: readable by its owner only.
  (umask 077; cat > "$DIR/redis.conf" <<CONF
bind $BIND
port $PORT
protected-mode yes
requirepass $(cat "$DIR/password")
daemonize yes
pidfile $DIR/redis.pid
logfile $DIR/redis.log
dir $DIR
appendonly yes
save ""
# workers and the instructor need none of these
rename-command CONFIG ""
rename-command DEBUG ""
rename-command MODULE ""
CONF
  )
  redis-server "$DIR/redis.conf"
  local deadline=$((SECONDS + 30))
  until ping; do
    if (( SECONDS > deadline )); then
      say "redis-server did not answer in time; last lines of $DIR/redis.log:" >&2
      tail -n 20 "$DIR/redis.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  say "started on ${BIND// /,} port $PORT (password in $DIR/password)"
}

stop() {
  if running; then
    local pid
    pid=$(cat "$DIR/redis.pid")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    say "stopped"
  else
    say "not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  install) install_redis ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
