#!/usr/bin/env bash
# The board's end-to-end tests: a real cluster (taskraft demo) and Debian's
# headless Chromium, driven by playwright-core. Needs node (>= 20) and
# /usr/bin/chromium (apt-get install -y chromium).
#
#   tests/browser/run.sh                      # uses target/debug/taskraft
#   TASKRAFT_BIN=/path/to/taskraft tests/browser/run.sh
#   TASKRAFT_STATIC_DIR=$PWD/static tests/browser/run.sh   # serve static/ from disk
#   UPDATE_DOCS_SCREENSHOT=1 tests/browser/run.sh          # also refresh docs/board.png
set -euo pipefail
# Paths given relative to where run.sh was called from stay valid after the cd.
for var in TASKRAFT_BIN TASKRAFT_STATIC_DIR; do
  if [ -n "${!var:-}" ] && [[ "${!var}" != /* ]]; then
    export "$var=$PWD/${!var}"
  fi
done
cd "$(dirname "$0")"
bin="${TASKRAFT_BIN:-../../target/debug/taskraft}"
if [ ! -x "$bin" ]; then
  echo "run.sh: no taskraft binary at $bin (cargo build, or set TASKRAFT_BIN)" >&2
  exit 2
fi
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "run.sh: no Chromium at ${CHROMIUM_PATH:-/usr/bin/chromium} (apt-get install -y chromium)" >&2
  exit 2
fi
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# One file at a time: each starts its own cluster and browser.
exec node --test --test-concurrency=1 --test-reporter=spec "$@" ./*.test.mjs
