#!/usr/bin/env bash
# Provide every base image the course uses. For each: present -> done; else pull;
# else build a labelled stand-in from Debian packages (offline classrooms, CI).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOTFS_IMAGE=genai-course/debian-minbase:bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
say() { printf 'images: %s\n' "$*"; }

present() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_rootfs() {
  present "$ROOTFS_IMAGE" && return
  command -v debootstrap >/dev/null || { [ "$(id -u)" = 0 ] || { say "debootstrap is needed to build stand-ins (run as root or install it)"; exit 1; }
    apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y debootstrap >/dev/null; }
  local dir; dir=$(mktemp -d)
  say "debootstrap --variant=minbase bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$dir.log" 2>&1 \
    || { tail -n 20 "$dir.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import \
    -c 'LABEL org.genai-course.stand-in=true' \
    -c 'CMD ["bash"]' \
    -m "Debian bookworm minbase rootfs for course stand-in images" - "$ROOTFS_IMAGE" >/dev/null
  rm -rf "$dir" "$dir.log"
}

build_standin() { # image-ref context-dir
  local ref=$1 ctx=$2 stage
  ensure_rootfs
  stage=$(mktemp -d)
  cp -r "$ctx"/. "$stage"/
  # The host's trusted CAs go in, so pip works behind a TLS-intercepting proxy.
  if [ -r "$CA_BUNDLE" ]; then cp "$CA_BUNDLE" "$stage/host-ca-bundle.crt"; else : > "$stage/host-ca-bundle.crt"; fi
  say "building stand-in $ref from Debian packages"
  DOCKER_BUILDKIT=1 docker build -q --build-arg "BASE=$ROOTFS_IMAGE" -t "$ref" "$stage" >/dev/null
  rm -rf "$stage"
  say "$ref ready (stand-in, $(docker image inspect -f '{{.Size}}' "$ref" | awk '{printf "%.0f MB", $1/1e6}'))"
}

ensure() { # image-ref stand-in-context
  local ref=$1
  if present "$ref"; then say "$ref present"; return; fi
  if [ -z "${COURSE_NO_PULL:-}" ] && timeout 300 docker pull -q "$ref" >/dev/null 2>&1; then say "$ref pulled"; return; fi
  build_standin "$ref" "$2"
}

ensure python:3.11-slim images/python
ensure postgres:15 images/postgres

# The Swarm node of lesson 10 and exercise 09 is ours: never pulled, always built here.
SWARM_NODE_IMAGE=genai-course/swarm-node:bookworm
if present "$SWARM_NODE_IMAGE"; then say "$SWARM_NODE_IMAGE present"; else build_standin "$SWARM_NODE_IMAGE" images/swarm-node; fi
