#!/usr/bin/env bash
# Run by `make web-test`: makes sure the browser tests have what they need —
# Debian's chromium at /usr/bin/chromium, and in web/node_modules the
# pinned playwright-core (no browser download of its own), typescript
# (checks the client library's JSDoc types) and axe-core (the pages'
# accessibility check). Safe to run again: it does
# nothing when all of them are there.
#
# Installing chromium needs apt-get and root (or sudo without a password);
# it runs non-interactively. Set CHROMIUM to use another binary instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    echo "error: $chromium is missing and we are not root (no sudo): install Debian's chromium package" >&2
    exit 1
  fi
  echo "ensure-browser: installing Debian's chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q >&2
  "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >&2
fi
echo "ensure-browser: $("$chromium" --version 2>/dev/null || echo "$chromium")" >&2

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: node and npm are needed for the web tests (node 20 or newer)" >&2
  exit 1
fi

cd "$root/web"
if [ ! -f node_modules/playwright-core/package.json ] ||
  [ ! -f node_modules/typescript/package.json ] ||
  [ ! -f node_modules/axe-core/package.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-browser: npm ci (playwright-core, typescript and axe-core, pinned in web/package-lock.json)" >&2
  # playwright-core downloads no browser; the variable makes sure of it.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
fi
echo "ensure-browser: playwright-core $(node -p "require('./node_modules/playwright-core/package.json').version")" >&2
