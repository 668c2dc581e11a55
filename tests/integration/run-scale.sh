#!/usr/bin/env bash
# Runs the connection-flow and agents integration suites (tests/integration/50-visitor and
# 60-agent) against PostgreSQL + Redis: starts a throwaway PostgreSQL cluster with scripts/pg.sh,
# runs node --test with PARLEY_TEST_BACKEND=scale (lib/server.mjs then gives every data directory
# a fresh database on that cluster and its own redis-server), then stops and removes the cluster.
# The same test files without PARLEY_TEST_BACKEND run against the embedded backend (SQLite).
#
#   tests/integration/run-scale.sh [BUILD_DIR] [-- NODE_TEST_ARGS...]
#       BUILD_DIR       default: build (relative to the repository); runs BUILD_DIR/parley
#       NODE_TEST_ARGS  instead of the two suites, e.g. -- tests/integration/50-visitor/03-send.test.mjs
#
# Environment passed through: PARLEY_TEST_REDIS=off (PostgreSQL only), PARLEY_SANITIZED=1 and
# ASAN_OPTIONS/UBSAN_OPTIONS/LSAN_OPTIONS (a sanitizer build), TEST_CONCURRENCY (node --test
# --test-concurrency, default 2), PARLEY_TEST_VERBOSE, PARLEY_KEEP_TMP.
# Exit status: the tests' (0 when every test passed). A PostgreSQL that cannot be started is a
# failure, not a skip.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=build
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    build=$1
    shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
case $build in /*) ;; *) build=$root/$build ;; esac

bin=$build/parley
if [ ! -x "$bin" ]; then
    echo "run-scale.sh: no parley binary at $bin (build first)" >&2
    exit 1
fi
for tool in psql pg_dump redis-server node; do
    if ! command -v "$tool" >/dev/null; then
        echo "run-scale.sh: $tool is not installed" >&2
        exit 1
    fi
done

dir=$(mktemp -d /tmp/parley-scaletest-XXXXXX)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    "$root/scripts/pg.sh" destroy "$dir" >/dev/null 2>&1 || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! url=$("$root/scripts/pg.sh" start "$dir"); then
    echo "run-scale.sh: PostgreSQL did not start" >&2
    exit 1
fi

if [ $# -gt 0 ]; then
    tests=("$@")
else
    tests=("$root/tests/integration/50-visitor/" "$root/tests/integration/60-agent/")
fi

echo "run-scale.sh: $bin against PostgreSQL ($url)$([ "${PARLEY_TEST_REDIS:-}" = off ] && echo ' without Redis' || echo ' + Redis')"
status=0
PARLEY_TEST_BACKEND=scale PARLEY_TEST_PG_URL=$url PARLEY_BIN=$bin PARLEY_BUILD=$build \
    node --test --test-concurrency="${TEST_CONCURRENCY:-2}" "${tests[@]}" || status=$?
exit $status
