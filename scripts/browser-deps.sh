#!/usr/bin/env bash
# Debian's chromium for the lessons' browser test. Playwright drives it through
# executable_path; no browser is ever downloaded by Playwright.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then echo "browser-deps: $("$CHROMIUM" --version 2>/dev/null || echo chromium) present"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "browser-deps: $CHROMIUM is missing; install Debian's chromium as root: apt-get install -y chromium" >&2
  exit 1
fi
echo "browser-deps: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get -qq update
apt-get -qq install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "browser-deps: $("$CHROMIUM" --version) installed"
