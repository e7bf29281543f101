#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the results site's browser test (make browser-deps,
# make test-browser). Nothing to do when both are on PATH (or NORMREPRO_CHROMIUM/NORMREPRO_CHROMEDRIVER
# name them); otherwise apt-get installs them, as root or through passwordless sudo. Exits 1, saying why,
# when they cannot be installed here.
set -uo pipefail
chromium=${NORMREPRO_CHROMIUM:-chromium}
driver=${NORMREPRO_CHROMEDRIVER:-chromedriver}
have() { command -v "$chromium" >/dev/null 2>&1 && command -v "$driver" >/dev/null 2>&1; }
say() { echo "browser-deps: $*" >&2; }

if have; then
  say "found $(command -v "$chromium") and $(command -v "$driver")"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no chromium/chromedriver and no apt-get here; install Chromium and its driver by hand"
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  say "no chromium/chromedriver, and installing them needs root (not root, no passwordless sudo)"
  exit 1
fi
say "installing chromium and chromium-driver with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq chromium chromium-driver; } >&2; then
  say "apt-get could not install chromium chromium-driver (offline, or no such package here)"
  exit 1
fi
have || { say "installed, yet $chromium or $driver is not on PATH"; exit 1; }
