#!/usr/bin/env bash
# The board's end-to-end tests: a real cluster (the shared harness's
# testbed-cluster, or taskraft demo --lab for the lab) and Debian's headless
# Chromium, driven by playwright-core. Needs node (>= 20) and
# /usr/bin/chromium (apt-get install -y chromium).
#
#   tests/browser/run.sh                      # uses target/debug/taskraft
#   TASKRAFT_BIN=/path/to/taskraft tests/browser/run.sh
#   TASKRAFT_TESTBED=/path/to/testbed-cluster tests/browser/run.sh  # else built here
#   TASKRAFT_STATIC_DIR=$PWD/static tests/browser/run.sh   # serve static/ from disk
#   UPDATE_DOCS_SCREENSHOT=1 tests/browser/run.sh          # also refresh docs/board.png
set -euo pipefail
# Paths given relative to where run.sh was called from stay valid after the cd.
for var in TASKRAFT_BIN TASKRAFT_STATIC_DIR TASKRAFT_TESTBED; do
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
if [ -z "${TASKRAFT_TESTBED:-}" ]; then
  # The cluster launcher of tests/testbed (a no-op when it is up to date).
  cargo build --quiet -p taskraft-testbed --bin testbed-cluster
  target="${CARGO_TARGET_DIR:-$PWD/../../target}"
  [[ "$target" == /* ]] || target="$PWD/../../$target"
  export TASKRAFT_TESTBED="$target/debug/testbed-cluster"
fi
if [ ! -x "$TASKRAFT_TESTBED" ]; then
  echo "run.sh: no testbed-cluster at $TASKRAFT_TESTBED" >&2
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
