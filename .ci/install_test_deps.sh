#!/usr/bin/env bash
# Installs the non-Python programs the test suite starts: PostgreSQL server binaries (initdb, pg_ctl),
# wrk, and Node.js with Azurite. Idempotent: does nothing for what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  echo "installing PostgreSQL server binaries"
  apt_install postgresql
fi
if ! command -v wrk >/dev/null; then
  echo "installing wrk (the benchmark's load generator; its wrapper has a test)"
  apt_install wrk
fi
if ! command -v npm >/dev/null; then
  echo "installing Node.js"
  apt_install nodejs npm
fi
if [ ! -x node_modules/.bin/azurite-blob ]; then
  echo "installing Azurite"
  npm ci --silent --no-audit --no-fund 2>/dev/null || npm install --silent --no-audit --no-fund
fi
